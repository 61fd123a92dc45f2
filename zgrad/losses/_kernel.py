"""The traced computations of losses on a model: one set of traces per model, the data as arguments.

A trace belongs to the model's structure and the loss's kind and options, never to
the data. :func:`kernel_for` returns the one kernel of a loss kind (unbinned,
extended unbinned, binned, chi2), a model and a set of Gaussian constraints; every
loss built on them calls the kernel's ``z.function`` methods with its own data
(events, counts, weights) wrapped in :class:`~zgrad.z._signature.AnyLength`. So a toy
study, a bootstrap or a fit of many data sets with one model traces the value, the
gradient and the Hessian once, for every data length (a second trace only where the
events no longer fit in one chunk).

A kernel holds its model weakly, and the table of kernels is keyed weakly by the
model: kernels and their traces live as long as the model does.

The losses reach a kernel through :class:`~zgrad.losses._base.BaseLoss`: a loss with a
kernel sets ``_kernel`` and implements ``_kernel_data()`` (its data tensors, in the
order the kernel's ``events`` takes them) and, if it chunks, ``_kernel_chunk(order)``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from zgrad.losses import _jet_derivatives
from zgrad.z._function import function
from zgrad.z._tape import checked_gradients, tape_hessian, tape_value_gradient

__all__ = ["BinnedKernel", "Chi2Kernel", "Events", "Kernel", "UnbinnedKernel", "kernel_for"]

_lock = threading.Lock()
_kernels: weakref.WeakKeyDictionary[Any, dict] = weakref.WeakKeyDictionary()


def kernel_for(kind: type[Kernel], model: Any, constraints: Sequence[Any], **options: Any) -> Any:
    """Return the shared kernel of ``kind`` for ``model``, the constraints and the options, creating it once.

    Constraints enter by Parameter identity and by their observed value and width, which
    are frozen into the traces (a loss with other constraint values gets its own kernel);
    ``options`` (hashable values) by value.
    """
    key = (
        kind,
        tuple(sorted(options.items())),
        tuple((c.param.ref(), c.observed, c.sigma) for c in constraints),
    )
    with _lock:
        table = _kernels.setdefault(model, {})
        kernel = table.get(key)
        if kernel is None:
            kernel = table[key] = kind(model, constraints, **options)
        return kernel


class Events:
    """The events of one call inside a trace: values, optional weights, their sum, the chunk size.

    Parameters
    ----------
    x : tf.Tensor
        Events, shape ``[n]`` (``n`` may be unknown while tracing).
    w : tf.Tensor or None
        Per-event weights, shape ``[n]``.
    chunk : int or None
        Events summed per step of a ``tf.while_loop``; None sums all at once.
    """

    def __init__(self, x: tf.Tensor, w: tf.Tensor | None, chunk: int | None) -> None:
        self.x = x
        self.w = w
        self.chunk = chunk
        self.dtype = x.dtype
        self.sum_w = tf.cast(tf.shape(x)[0], x.dtype) if w is None else tf.reduce_sum(w)

    def over_chunks(self, term: Callable, init: Any = None) -> Any:
        """Sum ``term(x, w)`` over chunks of the events (one call when ``chunk`` is None)."""
        if self.chunk is None:
            return term(self.x, self.w)
        size = self.chunk
        n = tf.shape(self.x)[0]
        n_chunks = (n + size - 1) // size

        def body(i: tf.Tensor, acc: Any) -> tuple:
            start = i * size
            length = tf.minimum(size, n - start)
            x = tf.slice(self.x, [start], [length])
            w = None if self.w is None else tf.slice(self.w, [start], [length])
            return i + 1, tf.nest.map_structure(tf.add, acc, term(x, w))

        start_acc = init if init is not None else tf.zeros([], self.dtype)
        _, total = tf.while_loop(lambda i, _: i < n_chunks, body, (tf.constant(0), start_acc))
        return total


class Kernel:
    """What every kernel offers: the loss value, gradient, Hessian and batched values, traced.

    A subclass implements ``events(data, chunk)`` (the data of one call as an object its
    ``tensor`` reads) and ``tensor(events)`` (the loss value, constraints included), and may
    replace ``_value_gradient`` and ``_value_gradient_hessian`` (by default tapes over the
    whole value).

    Parameters
    ----------
    model : zgrad model
    constraints : sequence of GaussianConstraint
    """

    errordef = 0.5

    def __init__(self, model: Any, constraints: Sequence[Any]) -> None:
        self._model_ref = weakref.ref(model)
        self.constraints = tuple(constraints)

    @property
    def model(self) -> Any:
        """The model (held weakly: the kernel lives in a table keyed by it)."""
        model = self._model_ref()
        if model is None:  # pragma: no cover - a loss keeps its model alive
            raise RuntimeError("The model of this kernel no longer exists.")
        return model

    def events(self, data: tuple, chunk: int | None) -> Any:
        """Return the object ``tensor`` reads from the data tensors of one call."""
        raise NotImplementedError

    def tensor(self, events: Any) -> tf.Tensor:
        """Return the loss value as a tensor."""
        raise NotImplementedError

    def constraint_terms(self, value: tf.Tensor) -> tf.Tensor:
        """Return ``value`` plus ``errordef`` times each constraint's chi2."""
        for c in self.constraints:
            value = value + tf.cast(self.errordef * c.chi2(), value.dtype)
        return value

    def _value_gradient(self, params: tuple, events: Any) -> tuple[tf.Tensor, tf.Tensor]:
        return tape_value_gradient(lambda: self.tensor(events), params, self.model)

    def _value_gradient_hessian(self, params: tuple, events: Any) -> tuple[tf.Tensor, ...]:
        return tape_hessian(lambda: self.tensor(events), params, self.model)

    # --- traced entry points ------------------------------------------------------------------
    # ``data`` is a tuple of AnyLength tensors (or None); ``identities`` (``p.ref()`` of each
    # Parameter) only joins the graph-cache key: the model reads its Parameters directly, so a
    # trace is valid only for the Parameters it was made with.

    @function(wraps="loss")
    def value(self, data: tuple, chunk: int | None) -> tf.Tensor:
        """Return the loss value for ``data``, summed in chunks of ``chunk`` events where it applies."""
        return self.tensor(self.events(data, chunk))

    @function(wraps="loss")
    def values(self, params: tuple, identities: tuple, points: Any, data: tuple, chunk: Any) -> tf.Tensor:
        """Return the loss at each row of ``points`` (values of ``params``), set one after the other.

        The Parameters are restored at the end.
        """
        events = self.events(data, chunk)
        return values_at_points(lambda: self.tensor(events), params, points, _dtype_of(data))

    @function(wraps="gradient")
    def value_gradient(self, params: tuple, identities: tuple, data: tuple, chunk: Any) -> tuple:
        """Return value and gradient by autodiff."""
        return self._value_gradient(tuple(params), self.events(data, chunk))

    @function(wraps="hessian")
    def value_gradient_hessian(self, params: tuple, identities: tuple, data: tuple, chunk: Any) -> tuple:
        """Return value, gradient and Hessian, exact."""
        return self._value_gradient_hessian(tuple(params), self.events(data, chunk))

    # The same at a point: the Parameters are first set to ``point`` inside the graph, so a
    # minimizer's call is one graph call (assigning five Parameters eagerly costs as much as
    # evaluating 2000 events). The Parameters keep the point's values afterwards.

    @function(wraps="loss")
    def value_at(self, params: tuple, identities: tuple, point: Any, data: tuple, chunk: Any) -> tf.Tensor:
        """Return the loss value with ``params`` set to ``point``."""
        assign(params, point)
        return self.tensor(self.events(data, chunk))

    @function(wraps="gradient")
    def value_gradient_at(
        self, params: tuple, identities: tuple, point: Any, data: tuple, chunk: Any
    ) -> tuple:
        """Return value and gradient with ``params`` set to ``point``."""
        assign(params, point)
        return self._value_gradient(tuple(params), self.events(data, chunk))

    @function(wraps="hessian")
    def value_gradient_hessian_at(
        self, params: tuple, identities: tuple, point: Any, data: tuple, chunk: Any
    ) -> tuple:
        """Return value, gradient and Hessian with ``params`` set to ``point``."""
        assign(params, point)
        return self._value_gradient_hessian(tuple(params), self.events(data, chunk))


class UnbinnedKernel(Kernel):
    """The unbinned NLL of one model: ``-sum w log pdf(x)``, plus the extended term if asked.

    Parameters
    ----------
    model : zgrad model
    constraints : sequence of GaussianConstraint
    extended : bool
        Whether the loss adds the extended term ``nu - sum_w log nu``.
    """

    def __init__(self, model: Any, constraints: Sequence[Any], extended: bool) -> None:
        super().__init__(model, constraints)
        self.extended = bool(extended)

    def events(self, data: tuple, chunk: int | None) -> Events:
        """Return the :class:`Events` of ``data = (x, w)``."""
        return Events(data[0], data[1], chunk)

    # --- the loss as tensors (plain Python: inlined into whichever trace calls it) ------------

    def chunk_term(self, x: tf.Tensor, w: tf.Tensor | None) -> tf.Tensor:
        """``-sum w log shape(x)`` over some events; the normalisation enters once, in the global term."""
        log_shape = self.model.log_unnormalized_pdf(x)
        return -tf.reduce_sum(log_shape if w is None else w * log_shape)

    def global_term(self, events: Events) -> tf.Tensor:
        """Return ``sum_w log N`` (plus ``nu - sum_w log nu`` when extended): the events' global term."""
        dtype = events.dtype
        log_norm = tf.cast(self.model.log_normalization(), dtype)
        if not self.extended:
            return events.sum_w * log_norm
        nu = tf.cast(self.model.expected_events(), dtype)
        # for a Sum with yields the normalisation is nu and the two logarithms cancel exactly
        return nu + events.sum_w * (log_norm - tf.math.log(nu))

    def without_data(self, events: Events) -> tf.Tensor:
        """Return the global term and the constraints: everything but the per-event sum."""
        return self.constraint_terms(self.global_term(events))

    def tensor(self, events: Events) -> tf.Tensor:
        """Return the loss value as a tensor."""
        return events.over_chunks(self.chunk_term) + self.without_data(events)

    def _value_gradient(self, params: tuple, events: Events) -> tuple[tf.Tensor, tf.Tensor]:
        # one tape per chunk of events, then one over the global term and the constraints
        def term(x: tf.Tensor, w: tf.Tensor | None) -> tuple:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(params)
                value = self.chunk_term(x, w)
            return value, checked_gradients(tape.gradient(value, list(params)), params, self.model)

        init = (tf.zeros([], events.dtype), tf.zeros([len(params)], params[0].dtype))
        chunk_value, chunk_grad = events.over_chunks(term, init)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(params)
            rest = self.without_data(events)
        rest_grad = tape.gradient(rest, list(params), unconnected_gradients=tf.UnconnectedGradients.ZERO)
        rest_grad = tf.stack([tf.cast(tf.reshape(g, []), chunk_grad.dtype) for g in rest_grad])
        return chunk_value + rest, chunk_grad + rest_grad

    def _value_gradient_hessian(self, params: tuple, events: Events) -> tuple[tf.Tensor, ...]:
        if _jet_derivatives.supported(self.model, params):
            return _jet_derivatives.value_gradient_hessian(self, events, params)
        n, dtype = len(params), params[0].dtype

        def term(x: tf.Tensor, w: tf.Tensor | None) -> tuple:
            return tape_hessian(lambda: self.chunk_term(x, w), params, self.model)

        init = (tf.zeros([], events.dtype), tf.zeros([n], dtype), tf.zeros([n, n], dtype))
        value, grad, hess = events.over_chunks(term, init)
        rest = tape_hessian(lambda: self.without_data(events), params, self.model, unconnected_is_zero=True)
        return value + rest[0], grad + tf.cast(rest[1], grad.dtype), hess + tf.cast(rest[2], hess.dtype)


class Bins:
    """The histogram of one call inside a trace: counts, edges (one more), optional per-bin weights."""

    def __init__(self, counts: tf.Tensor, edges: tf.Tensor, w: tf.Tensor | None) -> None:
        self.counts, self.edges, self.w = counts, edges, w


class BinnedKernel(Kernel):
    """The binned Poisson NLL of one model in the saturated form (see :class:`~zgrad.losses.BinnedNLL`)."""

    def events(self, data: tuple, chunk: int | None) -> Bins:
        """Return the :class:`Bins` of ``data = (counts, edges, w)``."""
        return Bins(*data)

    def tensor(self, events: Bins) -> tf.Tensor:
        """Return ``sum_i w_i [mu_i - n_i + n_i log(n_i / mu_i)]`` plus the constraints."""
        model, n = self.model, events.counts
        probs = model.bin_probabilities(events.edges)  # of the whole range: their sum is the covered part
        if getattr(model, "is_extended", False):
            mu = tf.cast(model.expected_events(), probs.dtype) * probs
        else:
            mu = tf.reduce_sum(n) * probs / tf.reduce_sum(probs)
        # n log(n / mu) with the limit 0 for n == 0
        log_n = tf.math.log(tf.where(n > 0, n, 1.0))
        log_term = tf.where(n > 0, n * (log_n - tf.math.log(mu)), tf.zeros_like(n))
        terms = mu - n + log_term
        return self.constraint_terms(tf.reduce_sum(terms if events.w is None else events.w * terms))


class Chi2Kernel(Kernel):
    """Least squares of one model's prediction (``pdf``, times the expected events when extended)."""

    errordef = 1.0

    def events(self, data: tuple, chunk: int | None) -> tuple:
        """Return ``data = (x, y, yerr, w)`` as it is."""
        return data

    def tensor(self, events: tuple) -> tf.Tensor:
        """Return ``sum_i w_i ((y_i - f(x_i)) / yerr_i)**2`` plus the constraints."""
        x, y, yerr, w = events
        pred = self.model.pdf(x)
        if getattr(self.model, "is_extended", False):
            pred = pred * tf.cast(self.model.expected_events(), pred.dtype)
        r = (y - tf.cast(pred, y.dtype)) / yerr
        return self.constraint_terms(tf.reduce_sum(r * r if w is None else w * r * r))


def _dtype_of(data: tuple) -> tf.DType:
    return data[0].dtype


def assign(params: tuple, point: tf.Tensor) -> None:
    """Set each Parameter to its entry of ``point`` (no limit check); for use inside a graph.

    Reads of the Parameters later in the same graph are ordered after these assignments
    (TensorFlow's automatic control dependencies on resources).
    """
    for j, p in enumerate(params):
        p.assign(tf.cast(point[j], p.dtype))


def values_at_points(
    value: Callable[[], tf.Tensor], params: tuple, points: tf.Tensor, dtype: tf.DType
) -> Any:
    """Evaluate ``value()`` with ``params`` set to each row of ``points`` in turn, inside a graph.

    The Parameters are assigned one point after the other (a ``tf.while_loop`` without
    parallel iterations) and restored to their values at entry when all are done.
    """
    params = tuple(params)
    originals = [tf.identity(p) for p in params]
    count = tf.shape(points)[0]

    def body(i: tf.Tensor, previous: tf.Tensor, values: tf.TensorArray) -> tuple:
        # ordered after the previous point's value: one point at a time
        with tf.control_dependencies([previous]):
            assigned = [p.assign(tf.cast(points[i, j], p.dtype)) for j, p in enumerate(params)]
        with tf.control_dependencies(assigned):
            current = tf.cast(value(), dtype)
        return i + 1, current, values.write(i, current)

    start = (tf.constant(0), tf.zeros([], dtype), tf.TensorArray(dtype, size=count))
    _, last, values = tf.while_loop(lambda i, *_: i < count, body, start, parallel_iterations=1)
    with tf.control_dependencies([last]):
        restored = [p.assign(o) for p, o in zip(params, originals, strict=True)]
    with tf.control_dependencies(restored):
        return tf.identity(values.stack())
