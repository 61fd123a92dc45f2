"""Value, gradient and Hessian of an unbinned NLL from the models' closed-form derivatives.

A model's shape is a mixture ``S(x) = sum_k c_k exp(u_k(x))`` (one term with ``c = 1`` for a
single PDF, one per component for a :class:`~zgrad.models.Sum`): the coefficients ``c_k``
are scalars (yields or fractions over the components' normalisations) and ``u_k`` is the
log-shape of component ``k``, whose first and second derivatives the analytic models write
out per event (``_log_shape_jet``). With ``L = -sum_i w_i log S(x_i)``, treated first as a
function of ``phi = (params, c_1..c_K)``::

    grad_phi L = -sum_i w_i D_i,                     D = d S / S
    hess_phi L =  sum_i w_i D_i D_i^T - sum_i w_i (d^2 S) / S

where, with ``q_k = exp(u_k) / S`` and ``G_k = d u_k / d params`` per event,
``D = (sum_k c_k q_k G_k, q_1..q_K)`` and the only non-zero blocks of ``(d^2 S) / S`` are
``sum_k c_k q_k (d^2 u_k + G_k G_k^T)`` (params, params) and ``q_k G_k`` (params, c_k). Every
event sum is a reduction or a ``[P+K, n] x [n, P+K]`` matrix product: no tape over the data.
The chain rule through ``c(params)`` then needs only scalar derivatives: with ``J = dc/dparams``
and ``lambda = dL/dc``, ``hess = M^T hess_phi M + d^2 (lambda . c) / d params^2``, ``M = [I; J]``.
The last term is a Hessian of a few scalars, taken by tapes together with the loss's global
term and constraints.

At 10^6 events this replaced a nested-tape Hessian of about 0.1 s and 0.6 s of first tracing
(``benchmarks/bench_fit.py``); the tape path stays for every model without jets.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from zgrad.gradients.autodiff import tape_hessian

__all__ = ["supported", "value_gradient_hessian"]


def supported(model: Any, params: tuple) -> bool:
    """Tell whether the closed form applies: every component has a jet, every param enters the model."""
    mixture = getattr(model, "_mixture", None)
    if mixture is None or not params:
        return False
    if not all(hasattr(pdf, "_log_shape_jet") for _, pdf in mixture()):
        return False
    in_model = {p.ref() for p in model.get_params(None)}
    return all(p.ref() in in_model for p in params)


def value_gradient_hessian(loss: Any, params: tuple, chunk_limit: int) -> tuple[tf.Tensor, ...]:
    """Return value, gradient and Hessian of ``loss`` (an unbinned NLL) w.r.t. ``params``.

    The events are summed in chunks of at most ``chunk_limit``; the caller has checked
    :func:`supported`.
    """
    dtype = loss._x.dtype
    n_params = len(params)
    index = {p.ref(): j for j, p in enumerate(params)}
    components = [pdf for _, pdf in loss.model._mixture()]
    # phi = (the params some log-shape depends on, then c_1..c_K); rows of phi in that order
    active = sorted({index[p.ref()] for pdf in components for p in pdf.params.values() if p.ref() in index})
    position = {j: a for a, j in enumerate(active)}
    size = len(active) + len(components)

    with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
        tape.watch(params)
        coefficients = _coefficients(loss.model, dtype)
    zero = tf.UnconnectedGradients.ZERO
    jacobian = [
        tf.zeros([n_params], dtype)
        if c is None
        else tf.cast(tf.stack(tape.gradient(c, list(params), unconnected_gradients=zero)), dtype)
        for c in coefficients
    ]  # dc_k / dparams
    del tape
    c_values = tf.stack([tf.ones([], dtype) if c is None else c for c in coefficients])

    def term(x: tf.Tensor, w: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return _chunk(components, index, position, c_values, x, w)

    init = (tf.zeros([], dtype), tf.zeros([size], dtype), tf.zeros([size, size], dtype))
    value, grad_phi, hess_phi = loss._over_chunks(term, init, limit=chunk_limit)

    # the chain rule through c(params): lambda . c carries the coefficients' slopes and curvature
    multipliers = tf.stop_gradient(grad_phi[len(active) :])
    varying = [k for k, c in enumerate(coefficients) if c is not None]

    def rest() -> tf.Tensor:
        total = tf.cast(loss._value_tensor_without_data(), dtype)
        if varying:
            again = _coefficients(loss.model, dtype)
            total += tf.add_n([multipliers[k] * again[k] for k in varying])
        return total

    rest_value, rest_grad, rest_hess = tape_hessian(rest, params, loss, unconnected_is_zero=True)
    unit = tf.eye(n_params, dtype=dtype)
    selection = tf.stack([unit[j] for j in active]) if active else tf.zeros([0, n_params], dtype)
    mixing = tf.concat([selection, tf.stack(jacobian)], axis=0)  # M = d phi / d params, [size, P]
    gradient = tf.linalg.matvec(selection, grad_phi[: len(active)], transpose_a=True)
    hessian = tf.matmul(mixing, tf.matmul(hess_phi, mixing), transpose_a=True) + tf.cast(rest_hess, dtype)
    hessian = 0.5 * (hessian + tf.transpose(hessian))  # exactly symmetric, which rounding leaves it not
    correction = tf.add_n([multipliers[k] * c_values[k] for k in varying]) if varying else 0.0
    out = params[0].dtype
    return (
        tf.cast(value + tf.cast(rest_value, dtype) - correction, out),
        tf.cast(gradient + tf.cast(rest_grad, dtype), out),
        tf.cast(hessian, out),
    )


def _coefficients(model: Any, dtype: tf.DType) -> list[tf.Tensor | None]:
    return [None if c is None else tf.cast(c, dtype) for c, _ in model._mixture()]


def _chunk(
    components: list, index: dict, position: dict, c: tf.Tensor, x: tf.Tensor, w: tf.Tensor | None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Sum over one chunk of events: ``-sum w log S``, its gradient and Hessian in ``phi``.

    Per-event quantities are stacked as rows (``[rows, n]``): stacking along the event axis
    and contracting over it with ``transpose_b`` are several times faster in TensorFlow than
    the column layout.
    """
    n_active, n_terms = len(position), len(components)
    jets = [pdf._log_shape_jet(x) for pdf in components]
    u = tf.stack([jet[0] for jet in jets])  # [K, n]
    top = tf.reduce_max(u, axis=0)
    e = tf.exp(u - top)
    s = tf.tensordot(c, e, axes=1)  # S exp(-top)
    q = e / s  # exp(u_k) / S
    log_s = top + tf.math.log(s)
    wq = q if w is None else q * w

    # per component: its first derivatives as rows, at their positions in phi
    slopes = [_slopes(pdf, jet[1], index, position) for pdf, jet in zip(components, jets, strict=True)]
    contributions: dict[int, list] = {}
    for k, (rows, where) in enumerate(slopes):
        if where:
            scale = c[k] * q[k]
            for a, row in zip(where, tf.unstack(rows), strict=True):
                contributions.setdefault(a, []).append(scale * row)
    d = tf.stack([tf.add_n(contributions[a]) for a in range(n_active)] + tf.unstack(q))  # D, [A+K, n]
    dw = d if w is None else d * w
    value = -tf.reduce_sum(log_s if w is None else w * log_s)
    grad = -tf.reduce_sum(dw, axis=1)
    outer = tf.matmul(dw, d, transpose_b=True)

    # (d^2 S) / S summed over events: sum_k c_k q_k (d2u_k + G_k G_k^T) and q_k G_k (with c_k)
    positions, values = [], []
    for k, (pdf, jet, (rows, where)) in enumerate(zip(components, jets, slopes, strict=True)):
        if where:
            weighted = rows * wq[k]
            products = c[k] * tf.matmul(weighted, rows, transpose_b=True)
            sums = tf.reduce_sum(weighted, axis=1)
            for i, a in enumerate(where):
                positions += [[a, n_active + k], [n_active + k, a]]
                values += [sums[i], sums[i]]
                positions += [[a, b] for b in where]
                values += [products[i, i2] for i2 in range(len(where))]
        for a, b, d2 in _pairs(pdf, jet[2], index, position):
            positions.append([a, b])
            values.append(c[k] * tf.reduce_sum(wq[k] * d2))
    size = n_active + n_terms
    if not values:
        return value, grad, outer
    return value, grad, outer - tf.scatter_nd(positions, tf.stack(values), [size, size])


def _slopes(pdf: Any, first: dict, index: dict, position: dict) -> tuple[tf.Tensor | None, list[int]]:
    """Return a component's first derivatives w.r.t. the requested params (rows) and their positions."""
    missing = set(pdf.params) - set(first)
    if missing:
        raise RuntimeError(f"{pdf!r}: _log_shape_jet gives no first derivative for {sorted(missing)}.")
    by_position: dict[int, Any] = {}
    for role, derivative in first.items():
        j = index.get(pdf.params[role].ref())
        if j is not None:  # a parameter playing two roles gets the sum of both
            a = position[j]
            by_position[a] = by_position[a] + derivative if a in by_position else derivative
    where = sorted(by_position)
    return (tf.stack([by_position[a] for a in where]) if where else None), where


def _pairs(pdf: Any, second: dict, index: dict, position: dict) -> list[tuple[int, int, Any]]:
    """Second derivatives of a component as ``(row, column, per-event array)``, both triangles."""
    out = []
    for (role_a, role_b), d2 in second.items():
        a, b = index.get(pdf.params[role_a].ref()), index.get(pdf.params[role_b].ref())
        if a is None or b is None:
            continue
        out.append((position[a], position[b], d2))
        if role_a != role_b:  # one entry per unordered pair of roles: mirror it
            out.append((position[b], position[a], d2))
    return out
