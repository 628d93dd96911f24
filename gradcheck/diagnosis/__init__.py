"""What kind of mistake a wrong gradient is: named from the full analytic and numeric arrays.

``diagnose(report)`` looks at each failing tensor and tests a short list of hypotheses, the
classic hand-derivation mistakes, in a fixed order; the first that holds is the diagnosis:

=================  ==========================================================================
kind               evidence (over every measured element, to each element's error bar)
=================  ==========================================================================
tie_counted        every mismatch is a tied element the engine failed along the tie (its
                   warnings say which): moved together, their gradients add up to more than
                   the loss's slope (a tied maximum's upstream given to every tied element)
tie_dropped        the same, and their gradients add up to 0 (a tie routed nowhere)
kink_convention    every mismatch sits on a kink (kinks="hull"): a convention outside the
                   one-sided derivatives, like ReLU'(0) = 2
at_kinks           every mismatch sits on a kink checked as an ordinary point (kinks="strict")
swapped            analytic = another tensor's numeric (same shape)
zero               analytic is 0 everywhere, numeric is not
sign               analytic = -numeric
scale              analytic = c x numeric for one c, at 2 clearly nonzero elements or more
                   (3 for a fitted c); a reason named only when c or 1/c is 2, one
                   dimension of the input or output, or their number of elements
transpose          analytic = numeric.T (square 2-D; the diagonal right, the rest mirrored)
reversed           analytic = numeric reversed along an axis, or all axes (a flipped kernel)
shifted            analytic = numeric shifted by one along an axis (an index off by one), the
                   slice the shift leaves over wrapped around, 0, or said to hold other values
missing_mask       analytic nonzero where numeric is 0, right elsewhere: at (nearly) all the
                   zeros, or at exactly the zeros a threshold on the input singles out
                   ("x > 6": the upper mask of a clip); the condition named only when exact;
                   right elements must be there, and numeric at the wrong ones below it at
                   every right one whose analytic is nonzero
inverted_mask      analytic nonzero exactly where numeric is 0, and 0 where numeric is not
offset             analytic - numeric is one constant on one element per row, one column,
                   one row, or every element; 0 elsewhere (numeric clearly nonzero somewhere:
                   on an all-zero numeric gradient, analytic is just that constant)
value_term         analytic - numeric = c x the tensor's own value (weight decay forgotten)
one_index          analytic - numeric depends on one index only (one constant per column)
zero / sign /      the same, on a region of the input only ("where x < 0"), right elsewhere
scale (``where``)
slice              every wrong element in one row (column, index along an axis), and there
                   analytic = 0, -numeric or c x numeric; every other element right
repeated_index     the wrong rows are exactly those an integer argument names more than once
                   (``grad[idx] += ...`` counts a repeated index once), and there analytic =
                   numeric / (times named), or the upstream gradient at one occurrence
recurrence         on the input: the last step of an axis right, every earlier one wrong
                   (the term carried back through the recurrence missing)
block_member       right at one element per block of a grid and 0 at the others; or exactly
                   one element per block of the upstream gradient (a strided slice where a
                   sum over the block was meant)
diagonal_only      s (1 - s) x dout for s = softmax(x): a Jacobian's diagonal alone
mode_mismatch      one normalisation formula (batch statistics) in analytic, the other
                   (fixed statistics) in numeric
epsilon            analytic = numeric x (p + eps) / p for one small eps: log(p + eps) in
                   forward, differentiated without the eps
isolated           a few elements wrong (at most 10, at most a quarter), the rest right
location           no kind fits: the smallest support of the wrong elements (plain slices, a
                   threshold on x, the rows an index repeats, x[i, y[i]] for labels y) and
                   its share of the error
needs_full         fast mode measured too few elements, or not a fair sample of them:
                   mode="full" would diagnose (with what the measured ones show)
=================  ==========================================================================

Rules that keep a diagnosis honest (a wrong diagnosis is worse than none):

- only failing tensors get a diagnosis, at most one each;
- a hypothesis must hold at every measured element off the kinks, with the error bar the
  engine accepted at that element (``TensorResult.error_bar``), scaled where the hypothesis
  scales the numeric value (c x numeric is allowed |c| x the bar);
- it needs evidence: elements where the numbers are clearly nonzero (4 error bars), and
  patterns that cannot arise by accident (a constant over several elements, a structure);
  a factor picked from a list (0, -1, a named c) needs two such elements, a fitted one
  three: one element's ratio is whatever it happens to be (a tensor of one element may
  show 0 or -1, never a named factor);
- where the hypothesis cannot be told apart from a right gradient (a symmetric matrix
  under transpose; an all-zero numeric gradient under sign or scale), it is not claimed;
- a rearrangement (reversed, shifted) is read only off a mostly nonzero gradient: the few
  nonzeros of a sparse one (one per pooling window) can line up by chance;
- a condition on the input ("x < 0") is named only when it holds at exactly the elements
  it describes: at every one of them and at no other measured element, and it leaves some
  measured element out (a condition every element meets separates nothing);
- "numeric is 0" is said only beside right elements, and never where numeric exceeds it at
  a right element whose analytic is nonzero (an error bar inflated by a huge analytic
  value holds numeric -0.8 "within 0");
- a reason for a scale factor is given only where it is one plain fact (8 is the batch
  size); "the batch size" is axis 0 of the input of check_layer or check_function, or of
  a first checked argument whose axis 0 the output shares (never a weight's rows).

Fast mode measures only the elements its random-direction tests point to, which are
biased toward the wrong ones: no pattern of the whole tensor is read from them. When
localization finished and few are wrong, they are "isolated"; otherwise the diagnosis is
"needs_full", with what the measured elements show (analytic = -numeric in each of them).

Every test is a few vectorized numpy passes over the elements, O(n) (one_index takes a
median per index, O(n log n)): a million-element tensor that no pattern fits took 1.3 s
without the rules from repeated_index on and 1.8 s with them, on one machine. The rules
live in one module per family (factors, rearranged, masks, terms, ties, partial; indices,
sequences, blocks, jacobians, normalisation, epsilon; locate), tried in the order of
:data:`gradcheck.diagnosis.rules.RULES`.
"""
from __future__ import annotations

from gradcheck.diagnosis.found import KINDS, Diagnosis, kinds
from gradcheck.diagnosis.rules import diagnose

__all__ = ["KINDS", "Diagnosis", "diagnose", "kinds"]
