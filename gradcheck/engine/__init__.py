"""The one engine: a check's evidence measured, and one verdict per element decided.

Its model, one module each:

- point: the only code that moves the user's arrays and puts them back, bit for bit;
- calls: the boundary around the user's loss() and grads() (counts, checks, randomness);
- slope: the one measurement, the slope of the loss along a direction at a ladder of
  steps h, h/2, ..., with one error-bar rule; coordinates, tie directions, fast mode's
  directions, jittered points and the resolution probe all measure this way;
- resolution: what the loss can resolve near the point (its rounding, its steps, the
  precision it computes in, its noise), measured once and read by the rest;
- tolerance: when a numeric value agrees with an analytic one, and when it is too
  coarse to vouch for it;
- ladder (full mode), fast (random directions), kinks (ties, jittered points): the
  evidence per element, gathered;
- verdict: the evidence goes in, one function decides a status and a reason per element;
- run: the order of work, and the report.

Every front door (gradcheck.params, gradcheck.adapters, gradcheck.pairs,
gradcheck.elementwise) ends in :func:`gradcheck.engine.run.run_check`.
"""
