"""What the front doors do with the user's arguments and answers (audit of issue 12):
arrays passed through are copied for every call and writes into them are named; an option
name that the function under test also takes is refused, not guessed; ``fixed=`` keeps a
float target unchecked; odd answers (None, a generator, a list of one gradient, an output
whose shape changes, a complex upstream) are named for what they are; a usage error comes
back without gradcheck's own frames.
"""
from __future__ import annotations

import functools
import traceback
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from test_front_doors import relu_backward, relu_forward, softmax_loss

import gradcheck as gc
from gradcheck.errors import GradcheckArgumentError, GradcheckUsageError, GradientShapeError
from gradcheck.options import Options, Subject, check_subject

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])


# ----------------------------------------------------------------------------- pass-through


def test_a_loss_writing_into_its_labels_is_named_and_the_callers_labels_are_unchanged() -> None:
    def clobbers_labels(x, y):
        result = softmax_loss(x, y)
        y[:] = 0  # the bug: writes into the labels it was given
        return result

    y = np.array([2, 1])
    report = gc.check_loss(clobbers_labels, X, y)
    assert y.tolist() == [2, 1]  # the caller's array
    assert [p.kind for p in report.problems] == ["in_place"]  # not "nondeterministic"
    [problem] = report.problems
    assert "'y' (int64 array (2,), written by clobbers_labels(x, y))" in problem.text
    assert "y = y.copy()" in problem.text
    # every call got a fresh copy, so the gradient itself was checked on the labels passed
    assert all(t.ok for t in report.tensors) and report.status == "FAILED"


def test_writes_through_forward_and_through_the_cache_name_the_writer() -> None:
    def embed_forward(idx, W):
        out = W[idx]
        idx[0, 0] = 1  # writes into the indices
        return out, (idx, W)

    def embed_backward(dout, cache):
        idx, W = cache
        dW = np.zeros_like(W)
        np.add.at(dW, idx, dout)
        return dW

    idx = np.array([[0, 2], [2, 1]])
    report = gc.check_pair(embed_forward, embed_backward, idx, np.ones((3, 2)))
    assert idx.tolist() == [[0, 2], [2, 1]]
    assert "'idx' (int64 array (2, 2), written by embed_forward(idx, W))" in str(report)

    def mask_forward(x, mask):
        return x * mask, mask

    def mask_backward(dout, mask):
        mask[:] = True  # writes into the mask it finds in the cache
        return dout * mask

    mask = np.array([[True, False, True], [False, True, True]])
    report = gc.check_pair(mask_forward, mask_backward, X, mask)
    assert mask.tolist() == [[True, False, True], [False, True, True]]
    [problem] = report.problems
    assert problem.kind == "in_place" and "written by mask_backward(dout, mask)" in problem.text


def test_a_float_array_passed_to_check_loss_is_copied_too() -> None:
    def doubles_target(x, t):
        t *= 2.0
        return float(np.sum((x - t) ** 2)), 2 * (x - t)

    t = np.ones(3)
    report = gc.check_loss(doubles_target, np.zeros(3), t)
    assert t.tolist() == [1.0, 1.0, 1.0]
    assert [p.kind for p in report.problems] == ["in_place"]
    assert all(t.ok for t in report.tensors)  # fresh copies: the loss is deterministic


def test_code_that_leaves_its_arguments_alone_has_no_problem() -> None:
    y = np.array([2, 1])
    report = gc.check_loss(softmax_loss, X, y)
    assert report.ok and report.problems == []


# ----------------------------------------------------------------------------- options vs forward


def dropout_forward(x, p, seed=None):
    mask = (np.random.RandomState(seed).rand(*x.shape) < p) / p
    return x * mask, mask


def dropout_backward(dout, mask):
    return dout * mask


def test_an_option_that_forward_also_takes_is_refused_not_guessed() -> None:
    calls = []

    def recorded(x, p, seed=None):
        calls.append(seed)
        return dropout_forward(x, p, seed)

    with pytest.raises(GradcheckUsageError, match=r"^seed= is gradcheck's option, and recorded "
                       r"also has a parameter 'seed'.*pass recorded's by position \(x, p, seed\) "
                       r"and gradcheck's as seed="):
        gc.check_pair(recorded, dropout_backward, X, 0.5, seed=1)
    assert calls == []  # refused before any call
    # forward's seed by position: gradcheck's seed= is unambiguous
    report = gc.check_pair(recorded, dropout_backward, X, 0.5, 1, seed=3)
    assert report.ok and report.options["seed"] == 3 and set(calls) == {1}


def test_a_keyword_only_parameter_of_the_function_under_test_says_to_bind_it() -> None:
    def forward(x, *, mode="train"):
        return 2 * x, None

    with pytest.raises(GradcheckUsageError, match=r"keyword-only parameter 'mode'.*"
                       r"functools\.partial\(forward, mode=\.\.\.\)"):
        gc.check_pair(forward, lambda d, c: 2 * d, X, mode="full")
    assert gc.check_pair(functools.partial(forward, mode="test"), lambda d, c: 2 * d, X,
                         mode="full").ok


def test_check_loss_refuses_the_same_ambiguity() -> None:
    def loss(x, y, seed=None):
        return softmax_loss(x, y)

    with pytest.raises(GradcheckUsageError, match="seed= is gradcheck's option, and loss"):
        gc.assert_loss(loss, X, np.array([0, 1]), seed=2)
    assert gc.assert_loss(loss, X, np.array([0, 1]), None, seed=2).ok


# ----------------------------------------------------------------------------- fixed=


def bce_forward(x, y):
    p = 1 / (1 + np.exp(-x))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), (p, y)


def bce_backward(dout, cache):
    p, y = cache
    return dout * (p - y) / p.size


def test_fixed_passes_a_float_target_through_unchecked() -> None:
    y = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    report = gc.check_pair(bce_forward, bce_backward, X, y, fixed=("y",))
    assert report.ok and [t.name for t in report.tensors] == ["x"]
    assert report.repeat.startswith("check_pair(bce_forward, bce_backward, x, y, fixed=('y',), ")
    assert gc.check_pair(bce_forward, bce_backward, X, y, fixed="y").ok  # one name


def test_without_fixed_the_count_error_says_how_to_leave_the_target_out() -> None:
    y = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    with pytest.raises(GradientShapeError, match=r"expected a tuple of 2 gradients \(dx, dy\).*"
                       r"if 'y' should pass through unchecked \(a target, a constant\), pass "
                       r"fixed=\('y',\)"):
        gc.check_pair(bce_forward, bce_backward, X, y)


def test_fixed_naming_no_argument_of_forward_is_a_usage_error() -> None:
    with pytest.raises(GradcheckUsageError, match=r"fixed names 'yy', which is not an argument "
                       r"of bce_forward\(x, y\) \(did you mean 'y'\?\)"):
        gc.check_pair(bce_forward, bce_backward, X, X, fixed=("yy",))
    with pytest.raises(GradcheckUsageError, match=r"no float numpy array to check.*fixed: x"):
        gc.check_pair(relu_forward, relu_backward, X, fixed=("x",))


# ----------------------------------------------------------------------------- odd answers


def test_a_list_of_one_gradient_is_the_gradient() -> None:
    assert gc.check_pair(relu_forward, lambda d, x: [relu_backward(d, x)], X).ok
    assert gc.check_pair(relu_forward, lambda d, x: (relu_backward(d, x),), X).ok
    # a (1, n) input whose gradient comes back as a nested list is that gradient, not a list
    row = X[:1]
    assert gc.check_pair(relu_forward, lambda d, x: relu_backward(d, x).tolist(), row).ok


@pytest.mark.parametrize("answer, named", [
    (None, r"None \(a missing return\?\)"),
    ("dx", "a str"),
    ((v for v in range(3)), r"a generator \(a yield instead of a return\?\)"),
], ids=["None", "str", "generator"])
def test_a_gradient_that_is_not_an_array_is_named_for_what_it_is(answer, named) -> None:
    square = lambda v: float(np.sum(v ** 2))  # noqa: E731
    with pytest.raises(GradientShapeError, match=rf"^grad\(x\) returned {named}: it must return "
                       "the gradient of f at x"):
        gc.check_function(square, lambda v: answer, X)
    with pytest.raises(GradientShapeError, match=rf"returned {named}: it must return the "
                       "gradient of the loss with respect to x"):
        gc.check_loss(lambda x: (square(x), answer), X)


def test_a_layer_grads_entry_that_is_none_is_named() -> None:
    class Forgets:
        def __init__(self):
            self.params, self.grads = {"w": np.ones(3)}, {"w": None}

        def forward(self, x):
            return x * self.params["w"]

        def backward(self, g):
            return g * self.params["w"]

    with pytest.raises(GradientShapeError, match=r"layer\.grads\['w'\] is None: backward must "
                       r"set it to dL/dw"):
        gc.check_layer(Forgets(), X)


def test_a_loss_that_is_none_says_missing_return() -> None:
    with pytest.raises(GradcheckUsageError, match=r"^f\(x\) returned None \(a missing return\?\)"):
        gc.check_function(lambda v: None, lambda v: 2 * v, X)
    with pytest.raises(GradcheckUsageError, match=r"returned None \(a missing return\?\) as the "
                       "loss"):
        gc.check_loss(lambda x: (None, 2 * x), X)


def test_an_output_whose_shape_changes_between_calls_is_said_so() -> None:
    class Growing:
        calls = 0

        def forward(self, x):
            self.calls += 1
            return np.ones(2 + (self.calls > 1)) * x.sum()

        def backward(self, g):
            return np.full(X.shape, g.sum())

    with pytest.raises(GradcheckUsageError, match=r"^layer\.forward\(x\) returned shape \(3,\) "
                       r"now but \(2,\) before: the output shape must not change between calls"):
        gc.check_layer(Growing(), X)


@pytest.mark.parametrize("upstream, dtype", [(X * 1j, "complex128"),
                                             (np.array([None, 1.0], dtype=object), "object"),
                                             (X > 0, "bool")])
def test_an_upstream_that_is_not_real_numbers_is_refused(upstream, dtype) -> None:
    with pytest.raises(GradcheckUsageError, match=rf"^upstream has dtype {dtype} .*upstream "
                       r"must be a real float array shaped like the output of "
                       r"layer\.forward\(x\)"):
        gc.check_layer(Twice(), X, upstream=upstream)


class Twice:
    def forward(self, x):
        return 2 * x

    def backward(self, g):
        return 2 * g


def test_an_upstream_message_names_the_output_once_and_quotes_a_dict_on_one_line() -> None:
    with pytest.raises(GradcheckUsageError) as caught:
        gc.check_pair(relu_forward, relu_backward, X, upstream={"g": "line\n" * 40})
    message = str(caught.value)
    assert "shaped like relu_forward(x) (or None" in message and "'s output" not in message
    assert "\n" not in message and message.endswith("…")


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("make", [lambda: np.ma.masked_array(X, mask=X < 0),
                                  lambda: np.asmatrix(X)], ids=["masked", "matrix"])
def test_a_masked_or_matrix_input_is_refused_like_check_params_does(make) -> None:
    x = make()
    with pytest.raises(GradcheckUsageError, match=r"^x is a (MaskedArray|matrix): its arithmetic "
                       r"differs from a plain array's"):
        gc.check_layer(Twice(), x)
    with pytest.raises(GradcheckUsageError, match="its arithmetic differs"):
        gc.check_pair(relu_forward, relu_backward, x)


def test_names_in_messages_and_the_repeat_line_drop_locals_and_lambdas() -> None:
    def affine_forward(x, w):
        return x @ w, (x, w)

    report = gc.check_pair(affine_forward, lambda d, c: (d @ c[1].T, c[0].T @ d), X, X.T)
    assert report.repeat.startswith("check_pair(affine_forward, backward, x, w, seed=0")
    with pytest.raises(GradcheckUsageError, match=r"^forward\(x\) returned None"):
        gc.check_pair(lambda x: None, relu_backward, X)


def test_upstream_misspelled_on_a_door_without_it_says_where_it_belongs() -> None:
    with pytest.raises(GradcheckArgumentError, match=r"check_function\(\) got an unexpected option "
                       r"'upstrem' \(upstream= is a keyword of check_layer and check_pair only\)"):
        gc.check_function(np.sum, np.ones_like, X, upstrem=X)
    with pytest.raises(GradcheckArgumentError, match=r"check_pair\(\) got an unexpected option "
                       r"'upstrem' \(did you mean 'upstream'\?\)"):
        gc.check_pair(relu_forward, relu_backward, X, upstrem=X)


# ----------------------------------------------------------------------------- bad option values


def test_a_progress_callable_that_cannot_take_done_and_total_is_refused_up_front() -> None:
    calls = []

    def f(v):
        calls.append(1)
        return float(np.sum(v ** 2))

    with pytest.raises(GradcheckUsageError, match=r"^progress must accept \(done, total\).*"
                       r"<lambda>\(\) does not"):
        gc.check_function(f, lambda v: 2 * v, X, progress=lambda: None)
    assert calls == []
    assert gc.check_function(f, lambda v: 2 * v, X, progress=lambda *counts: None).ok


@pytest.mark.parametrize("size", [3, 400])  # a small check runs serially, a large one spreads
def test_an_executor_that_was_shut_down_is_a_usage_error_at_any_size(size) -> None:
    pool = ThreadPoolExecutor(2)
    pool.shutdown()
    with pytest.raises(GradcheckUsageError, match=r"^executor= was shut down \(a "
                       r"ThreadPoolExecutor that takes no new work\): pass a running executor"):
        gc.check_function(np.sum, np.ones_like, np.ones(size), executor=pool)


def test_an_executor_refusing_work_when_the_scan_is_spread_is_a_usage_error() -> None:
    import pickle

    from gradcheck.parallel import _spread

    class Closed(ThreadPoolExecutor):
        def submit(self, *args, **kwargs):
            raise RuntimeError("cannot schedule new futures after shutdown")

    payload = pickle.dumps((functools.partial(np.sum, np.ones(4)), {"x": np.ones(4)}, "f(x)"))
    with Closed(1) as pool, pytest.raises(GradcheckUsageError, match="executor= was shut down"):
        _spread(pool, payload, "x", np.arange(4), np.full(4, 1e-4), lambda done: None, 2, 1)


def test_check_subject_accepts_a_subject_and_names_anything_else() -> None:
    subject = Subject("params w")
    assert check_subject(subject) is subject and check_subject(None) is None
    with pytest.raises(GradcheckUsageError, match=r"subject must be a gradcheck\.Subject, e\.g\. "
                       r"gc\.Subject\(title='my net'\), or None for the default, got str 'w'"):
        check_subject("w")


def test_the_options_object_documents_every_option_once() -> None:
    """Options' docstring carries the front doors' options text, whose bullets name every
    option exactly once (and nothing else)."""
    from dataclasses import fields

    from gradcheck.options import OPTIONS_DOC

    doc = Options.__doc__ or ""
    assert " ".join(OPTIONS_DOC.split()) in " ".join(doc.split())
    bullets = [line.strip()[2:].split(":")[0] for line in doc.splitlines()
               if line.strip().startswith("- ")]
    named = [name.strip() for bullet in bullets for name in bullet.split(",")]
    assert sorted(named) == sorted(field.name for field in fields(Options))


# ----------------------------------------------------------------------------- tracebacks


def test_a_usage_error_comes_back_without_gradcheck_frames() -> None:
    class ReturnsNone:
        def forward(self, x):
            return None

        def backward(self, g):
            return g

    with pytest.raises(GradcheckUsageError) as caught:
        gc.assert_layer(ReturnsNone(), X)
    files = [frame.filename for frame in traceback.extract_tb(caught.value.__traceback__)]
    engine = [f for f in files if f.endswith(("core.py", "calls.py", "adapters.py"))]
    assert engine == [], files
    assert files[0] == __file__  # the user's call is where it starts
