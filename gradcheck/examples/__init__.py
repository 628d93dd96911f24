"""User-style layers to try gradcheck on: hand-written numpy backprop, correct and buggy.

Each class is a *factory* in the sense of ``gradcheck``: called with no positional
arguments (optionally ``rng=`` and ``dtype=``) it returns a fresh layer, and the layer
carries an ``input_shape`` attribute, so all of these work out of the box::

    python -m gradcheck check gradcheck.examples.layers:Dense          # exit 0
    python -m gradcheck check gradcheck.examples.layers:BuggyDense     # exit 1, names W[1, 0]
    pytest --gradcheck-layer=gradcheck.examples.layers:BatchNorm1d -m gradcheck
"""
