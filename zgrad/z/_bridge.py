"""``z.py_function``: NumPy/SciPy code inside graphs, with a registered gradient.

TensorFlow's own bridges have no gradient (``tf.numpy_function`` gives None,
``tf.py_function`` over NumPy gives 0.0, both silently). Here the forward pass is a
``tf.numpy_function`` wrapped in ``tf.custom_gradient``, whose backward pass
contracts the upstream gradient with a derivative array (central differences from
:func:`zgrad._finite.array_derivative`, the package's one finite-difference engine, with its
step rule for each derivative order). That array is itself computed by a bridged function
with a numerical gradient, so the gradient is differentiable again: Hessians through the
bridge work with nested tapes.

Derivative arrays per input, from the cheapest shape that is correct:

- a scalar input: the derivative of the output w.r.t. it, 2 evaluations;
- with ``elementwise=True``, an input of the output's shape: the diagonal of the
  Jacobian, 2 evaluations in total;
- otherwise the full Jacobian, 2 evaluations per input element.

An elementwise function of a large array is evaluated in slices on ``zgrad.run.n_cpu``
threads (``threads=`` overrides; see ``_slices``): the values and the differences are the same
numbers, computed on several cores.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from zgrad import _finite, _threads
from zgrad._tf_compat import should_record_backprop
from zgrad.errors import BridgeCostWarning, GradientError, ZgradError
from zgrad.z._function import xla_tracing
from zgrad.z._slices import MAX_THREADS, evaluate_in_slices, slice_count

# BridgeCostWarning lives in zgrad.errors; importable from here as before
__all__ = ["BridgeCostWarning", "py_function"]

#: An input with more elements than this, differentiated through its full Jacobian, triggers a warning.
LARGE_JACOBIAN = 1000


def py_function(
    func: Callable[..., Any],
    inp: Any,
    Tout: Any,
    *,
    gradient: str | Callable[..., Any] | None = "numerical",
    elementwise: bool = False,
    name: str | None = None,
    threads: int | None = None,
) -> tf.Tensor:
    """Run NumPy/SciPy code ``func(*inp)`` inside eager code or a trace, keeping gradients.

    Parameters
    ----------
    func : callable
        Takes NumPy arrays (one per input) and returns an array (or number) convertible to
        ``Tout``; with ``elementwise=True``, of the inputs' broadcast shape. Each evaluation
        checks this, eagerly and inside graphs alike: ``None``, a non-numeric result, complex
        values for a real ``Tout`` (their imaginary part would be lost) or, with
        ``elementwise=True``, another shape raise an error naming the function (inside a graph,
        as TensorFlow's ``InvalidArgumentError`` carrying that message).
        Everything it depends on must come through ``inp``: a Parameter read inside
        the body is invisible to TensorFlow (a Parameter reached through the closure
        or the globals of ``func`` raises an error).
    inp : tensor, array or sequence of them
        The inputs.
    Tout : tf.DType
        The output dtype (one output). Only a floating ``Tout`` has a gradient: an integer,
        boolean or complex ``Tout`` needs ``gradient=None``, and is refused otherwise.
    gradient : 'numerical', callable or None, default 'numerical'
        ``'numerical'``: central differences (see the module notes for their cost). A
        callable: takes the same NumPy inputs and returns the Jacobian d(output)/d(input)
        for each input (a tuple for several inputs); with ``elementwise=True`` the
        elementwise derivative, of the output's shape; for a scalar input, an array of
        the output's shape. ``None``: not differentiable; differentiating raises.
    elementwise : bool, default False
        Declares that ``output[i]`` depends only on ``input[i]`` for every input of the
        output's shape (scalar inputs may broadcast), so derivatives cost 2 evaluations.
    name : str, optional
        Used in error messages; defaults to ``func.__name__``.
    threads : int, optional
        Only with ``elementwise=True``: an evaluation of at least 2**16 output elements is cut
        along the first axis into this many slices (at most the length of that axis), evaluated
        at once on as many threads (the same numbers; NumPy and SciPy release the GIL while
        they compute). ``1`` evaluates in one piece; at most 256, above it
        ``ValueError``. Default: ``zgrad.run.n_cpu`` (capped at 256), except in a
        graph traced under a gradient tape, where TensorFlow already runs the forward and the
        derivative evaluations side by side (there: 1). The slices run on one pool shared by
        the process, never more than 256 threads. ``func`` must be safe to call
        from several threads at once, as pure functions of their inputs are.

    Returns
    -------
    tf.Tensor
        The output; its gradient is the one ``gradient`` defines.

    Raises
    ------
    ValueError
        An integer, boolean or complex ``Tout`` with a gradient other than ``None``; ``threads``
        outside 1 to 256.
    zgrad.errors.GradientError
        When differentiated with ``gradient=None``.
    zgrad.errors.ZgradError
        Inside a trace compiled with XLA (``z.function(..., jit_compile=True)``): XLA cannot
        compile host callbacks. Graphs containing a bridge also cannot be exported and
        called from another process.

    Examples
    --------
    >>> import numpy as np, scipy.special, tensorflow as tf, zgrad
    >>> from zgrad import z
    >>> x = tf.constant([0.5, 1.0], tf.float64)
    >>> with tf.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = z.py_function(scipy.special.erf, [x], tf.float64, elementwise=True)
    >>> exact = 2 / np.sqrt(np.pi) * np.exp(-x.numpy() ** 2)
    >>> bool(np.allclose(tape.gradient(y, x).numpy(), exact, rtol=1e-8))
    True
    """
    if not callable(func):
        raise TypeError(f"func must be callable; got {func!r} ({type(func).__name__}).")
    if not (gradient is None or gradient == "numerical" or callable(gradient)):
        raise ValueError(
            f"gradient={gradient!r} is not allowed; allowed: 'numerical', a callable returning the Jacobian "
            "for each input, or None (not differentiable)."
        )
    if not isinstance(elementwise, bool):
        raise TypeError(f"elementwise must be True or False; got {elementwise!r}.")
    _check_threads(threads, elementwise)
    label = name if name is not None else getattr(func, "__name__", repr(func))
    if not isinstance(label, str):
        raise TypeError(f"name must be a str; got {name!r}.")
    dtype = tf.as_dtype(Tout)
    _check_differentiable_dtype(dtype, gradient, label)
    if xla_tracing.get():
        raise ZgradError(
            f"z.py_function {label!r} is called inside a trace compiled with XLA (jit_compile=True). "
            "XLA cannot compile host callbacks: remove jit_compile=True from the enclosing z.function, "
            f"or write {label!r} in TensorFlow."
        )
    _refuse_hidden_parameters(func, label)
    inputs = [tf.convert_to_tensor(x) for x in (inp if isinstance(inp, (list, tuple)) else [inp])]
    if threads is None and not tf.executing_eagerly() and should_record_backprop(inputs):
        # differentiated inside a graph: TensorFlow runs the forward evaluation and the derivative
        # evaluations side by side on its inter-op threads, so the cores are busy already; slicing
        # them as well made the benchmarked gradients up to 15 % slower (benchmarks/bench_bridge.py)
        threads = 1
    return _Bridge(func, gradient, elementwise, label, dtype, depth=0, threads=threads)(inputs)


def _check_threads(threads: Any, elementwise: bool) -> None:
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise ValueError(
            f"threads must be None (zgrad.run.n_cpu) or an int from 1 to {MAX_THREADS}; got {threads!r}."
        )
    if threads > 1 and not elementwise:
        raise ValueError(
            f"threads={threads} needs elementwise=True: only an elementwise function can be evaluated "
            "in slices. Declare elementwise=True if output[k] depends only on the inputs at k, or leave "
            "threads unset."
        )


def _check_differentiable_dtype(dtype: tf.DType, gradient: Any, label: str) -> None:
    """Refuse a gradient for an output dtype that has none: integers, booleans, complex numbers."""
    if gradient is None or dtype.is_floating:
        return
    raise ValueError(
        f"z.py_function {label!r} has Tout={dtype.name}, an output without a gradient (only floating "
        f"outputs are differentiated), but gradient={gradient!r}. Pass gradient=None to declare "
        f"{label!r} not differentiable, or a floating Tout such as tf.float64."
    )


def _checked_output(
    result: Any, xs: Sequence[np.ndarray], label: str, dtype: tf.DType, elementwise: bool
) -> np.ndarray:
    """Return ``result`` as an array of ``dtype``; raise, naming ``label``, if it cannot honestly be one.

    Runs in the host callback, where the NumPy result exists, so the checks hold inside graphs too.
    """
    if result is None:
        raise TypeError(
            f"z.py_function {label!r} returned None; it must return an array or number convertible to "
            f"Tout={dtype.name}."
        )
    array = np.asarray(result)
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"z.py_function {label!r} returned {type(result).__name__} of dtype {array.dtype}; it must "
            f"return an array or number convertible to Tout={dtype.name}."
        )
    if array.dtype.kind == "c" and not dtype.is_complex:
        raise TypeError(
            f"z.py_function {label!r} returned complex values (dtype {array.dtype}) but Tout={dtype.name}: "
            "the imaginary part would be lost. Return the real part explicitly (np.real), or pass a "
            "complex Tout (then with gradient=None)."
        )
    if elementwise:
        expected = np.broadcast_shapes(*(np.shape(x) for x in xs))
        if array.shape != expected:
            raise ValueError(
                f"z.py_function {label!r} is declared elementwise=True but returned shape {array.shape} "
                f"for inputs that broadcast to {expected}; it must return the inputs' broadcast shape, "
                "or be bridged with elementwise=False."
            )
    return array.astype(dtype.as_numpy_dtype, copy=False)


class _Bridge:
    """One bridged function at one derivative order (``depth``), with its custom gradient."""

    def __init__(
        self,
        func: Callable,
        gradient: Any,
        elementwise: bool,
        label: str,
        dtype: tf.DType,
        depth: int,
        threads: int | None = None,
    ):
        self.func, self.gradient, self.elementwise = func, gradient, elementwise
        self.label, self.dtype, self.depth, self.threads = label, dtype, depth, threads

    def _serial(self, *xs: np.ndarray) -> np.ndarray:
        """``func(*xs)`` in one piece, checked and converted to the output dtype."""
        return _checked_output(self.func(*xs), xs, self.label, self.dtype, self.elementwise)

    def _numpy(self, *xs: np.ndarray) -> np.ndarray:
        """``func(*xs)`` as the graph calls it: in slices on several threads where that is allowed."""
        slices = 1
        if self.elementwise:  # the process's setting is read when the graph runs, not when it traces
            slices = slice_count(xs, _threads.n_cpu() if self.threads is None else self.threads)
        if slices == 1:
            return self._serial(*xs)
        return evaluate_in_slices(self._serial, xs, slices)

    def __call__(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        bridge = self

        @tf.custom_gradient
        def bridged(*xs: tf.Tensor) -> Any:
            y = tf.numpy_function(
                bridge._numpy, list(xs), bridge.dtype, stateful=False, name=_op_name(bridge.label)
            )
            if bridge.elementwise:
                y.set_shape(functools.reduce(tf.broadcast_static_shape, [x.shape for x in xs]))
            needed = _needed(xs)

            def grad(dy: tf.Tensor) -> list[tf.Tensor | None]:
                return [bridge._vjp(list(xs), i, dy) if needed[i] else None for i in range(len(xs))]

            return y, grad

        return bridged(*inputs)

    def _vjp(self, xs: list[tf.Tensor], i: int, dy: tf.Tensor) -> tf.Tensor:
        if self.gradient is None:
            raise GradientError(
                f"z.py_function {self.label!r} was bridged with gradient=None, so it cannot be "
                "differentiated. "
                "Pass gradient='numerical' (finite differences) or a callable returning its Jacobian."
            )
        x = xs[i]
        mode = _mode(x, dy, self.elementwise)
        if (
            mode == "full"
            and self.gradient == "numerical"
            and x.shape.num_elements() is not None
            and x.shape.num_elements() > LARGE_JACOBIAN
        ):
            warnings.warn(
                f"The numerical gradient of z.py_function {self.label!r} w.r.t. input {i} "
                f"({x.shape.num_elements()} elements) needs a full Jacobian: {2 * x.shape.num_elements()} "
                "evaluations. Declare elementwise=True if output[k] depends only on input[k], "
                "or give gradient=.",
                BridgeCostWarning,
                stacklevel=2,
            )
        derivative = _Bridge(
            self._derivative_numpy(i, mode),
            "numerical",
            self.elementwise and mode != "full",
            f"d{self.label}/dx{i}",
            dy.dtype,
            self.depth + 1,
            self.threads,
        )(xs)
        derivative = tf.cast(derivative, dy.dtype)
        if mode == "scalar":
            return tf.cast(tf.reshape(tf.reduce_sum(dy * derivative), tf.shape(x)), x.dtype)
        if mode == "elementwise":
            return tf.cast(dy * derivative, x.dtype)
        # flattened rather than contracted over the output's axes: in a graph a bridge that is not
        # elementwise has an output of unknown rank. Both sizes are given: -1 cannot be inferred
        # when the output or the input is empty
        jacobian = tf.reshape(derivative, tf.stack([tf.size(dy), tf.size(x)]))
        contracted = tf.matmul(tf.reshape(dy, [1, -1]), jacobian)
        return tf.cast(tf.reshape(contracted, tf.shape(x)), x.dtype)

    def _derivative_numpy(self, i: int, mode: str) -> Callable[..., np.ndarray]:
        """Return a NumPy function of all inputs giving the derivative array of input ``i``."""
        if callable(self.gradient) and self.depth == 0:
            user = self.gradient

            def from_user(*xs: np.ndarray) -> np.ndarray:
                jac = user(*xs)
                if len(xs) > 1 or isinstance(jac, tuple):
                    jac = jac[i]
                return np.asarray(jac, dtype=np.float64)

            return from_user
        # the derivative bridge slices; its slices must not slice again
        func, depth = self._serial, self.depth

        def numerical(*xs: np.ndarray) -> np.ndarray:
            # the step for this derivative order is the engine's: first_step at this depth
            return _finite.array_derivative(func, xs, i, mode, depth).estimate

        return numerical


def _needed(xs: Sequence[tf.Tensor]) -> list[bool]:
    """Which inputs can receive a gradient: eagerly, only those some tape watches now.

    An eager backward pass runs the gradient function for every input, so without this a
    gradient w.r.t. a Parameter would also pay for the derivative w.r.t. constant data (2 more
    evaluations, or a whole Jacobian). A tape must be recording during an eager forward pass for
    any gradient to exist later, so the check is exact. While tracing, a tape outside the graph
    may ask for any input's gradient later, so all are kept; unused ones are pruned from the graph.
    """
    if not tf.executing_eagerly():
        return [True] * len(xs)
    return [bool(should_record_backprop([x])) for x in xs]


def _mode(x: tf.Tensor, dy: tf.Tensor, elementwise: bool) -> str:
    if x.shape.rank == 0 or x.shape.num_elements() == 1:
        return "scalar"
    if elementwise:
        return "elementwise"
    return "full"


def _op_name(label: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_-." else "_" for c in label)
    return cleaned if cleaned and cleaned[0].isalpha() else f"bridge_{cleaned}"


def _refuse_hidden_parameters(func: Callable, label: str) -> None:
    """Raise if ``func`` reaches a tf.Variable through its closure, defaults or globals it names."""
    try:
        closure = inspect.getclosurevars(func)
    except (TypeError, ValueError):  # builtins and ufuncs have no Python closure: nothing hidden
        return
    found = {**closure.nonlocals, **closure.globals}
    defaults = getattr(func, "__defaults__", None) or ()
    # the variable's own name too: the name a closure uses need not be the Parameter's
    hidden = [f"{n} ({v.name!r})" for n, v in found.items() if isinstance(v, tf.Variable)]
    hidden += [f"default #{k} ({v.name!r})" for k, v in enumerate(defaults) if isinstance(v, tf.Variable)]
    if hidden:
        raise ZgradError(
            f"z.py_function {label!r} reads Parameters/variables {', '.join(hidden)} inside its Python "
            "body, where TensorFlow cannot see them: their gradient would be lost. Pass them through inp "
            "instead, e.g. z.py_function(lambda x, mu: f(x, mu), [x, mu], tf.float64)."
        )
