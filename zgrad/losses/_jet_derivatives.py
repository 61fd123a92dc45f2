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
Those scalars are closed-form too: ``c_k = w_k exp(-log N_k)`` with weights linear in the
yields or fractions and the components' normalisation jets (``_log_normalization_jet``), and
the loss's global term and Gaussian constraints are written out as well. No tape is involved.

On the reference fit at 10^6 events (``benchmarks/bench_fit.py``) a Hessian took 22 ms
instead of 90 ms by nested tapes, and the first one 0.27 s instead of 0.5 s at 10^5 events,
tracing included (nested tapes over even the few scalar terms cost 0.3 s to trace). Every
model without jets keeps the tape path.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from zgrad.typing import LogDensityJets, MixtureJets

__all__ = ["supported", "value_gradient_hessian"]


def supported(model: Any, params: tuple) -> bool:
    """Tell whether the closed form applies: every component has jets, every param enters the model.

    The model is a single analytic PDF or a :class:`~zgrad.models.Sum` of them (not nested).
    Nothing is computed: only the structure is looked at.
    """
    if not params:
        return False
    components, single = _components(model)
    if not single and not isinstance(model, MixtureJets):
        return False
    if not all(isinstance(pdf, LogDensityJets) for pdf in components):
        return False
    in_model = {p.ref() for p in model.get_params(None)}
    return all(p.ref() in in_model for p in params)


def _components(model: Any) -> tuple[list, bool]:
    """Return the mixture's components and whether the model is a single PDF (not a Sum)."""
    pdfs = getattr(model, "pdfs", None)
    return ([model], True) if pdfs is None else (list(pdfs), False)


def value_gradient_hessian(nll: Any, events: Any, params: tuple) -> tuple[tf.Tensor, ...]:
    """Return value, gradient and Hessian of an unbinned NLL w.r.t. ``params``.

    ``nll`` is the loss's :class:`~zgrad.losses._kernel.UnbinnedKernel` and ``events`` the
    :class:`~zgrad.losses._kernel.Events` of the call (summed in their chunks); the caller
    has checked :func:`supported`.
    """
    dtype = events.dtype
    n_params = len(params)
    index = {p.ref(): j for j, p in enumerate(params)}
    components, single = _components(nll.model)
    # phi = (the params some log-shape depends on, then c_1..c_K); rows of phi in that order
    active = sorted({index[p.ref()] for pdf in components for p in pdf.params.values() if p.ref() in index})
    position = {j: a for a, j in enumerate(active)}
    size = len(active) + len(components)
    coefficients = [tf.ones([], dtype)] if single else [tf.cast(c, dtype) for c, _ in nll.model._mixture()]
    c_values = tf.stack(coefficients)

    def term(x: tf.Tensor, w: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return _chunk(components, index, position, c_values, x, w)

    init = (tf.zeros([], dtype), tf.zeros([size], dtype), tf.zeros([size, size], dtype))
    value, grad_phi, hess_phi = events.over_chunks(term, init)

    # everything but the events: global term, constraints, and the chain rule through c(params),
    # where lambda = dL/dc carries the coefficients' slopes and curvature
    multipliers = grad_phi[len(active) :]
    rest = _Dense(index, dtype)
    _global_and_constraints(nll, events.sum_w, single, rest)
    jacobian = (  # dc_k / dparams, [K, P]
        tf.zeros([1, n_params], dtype) if single else _coefficients(nll.model, multipliers, rest)
    )
    rest_grad, rest_hess = rest.build()

    unit = tf.eye(n_params, dtype=dtype)
    selection = tf.stack([unit[j] for j in active]) if active else tf.zeros([0, n_params], dtype)
    mixing = tf.concat([selection, jacobian], axis=0)  # M = d phi / d params, [size, P]
    gradient = tf.linalg.matvec(selection, grad_phi[: len(active)], transpose_a=True) + rest_grad
    hessian = tf.matmul(mixing, tf.matmul(hess_phi, mixing), transpose_a=True) + rest_hess
    hessian = 0.5 * (hessian + tf.transpose(hessian))  # exactly symmetric, which rounding leaves it not
    out = params[0].dtype
    total = value + tf.cast(nll.without_data(events), dtype)
    return tf.cast(total, out), tf.cast(gradient, out), tf.cast(hessian, out)


class _Dense:
    """Collects scalar first and second derivatives by Parameter; builds a vector and a matrix."""

    def __init__(self, index: dict, dtype: tf.DType) -> None:
        self.index, self.dtype = index, dtype
        self._grad: list[tuple[int, Any]] = []
        self._hess: list[tuple[int, int, Any]] = []
        self._dense: list[tuple[tf.Tensor, tf.Tensor]] = []

    def position(self, param: Any) -> int | None:
        return self.index.get(param.ref())

    def add(self, param: Any, value: Any) -> None:
        j = self.position(param)
        if j is not None:
            self._grad.append((j, value))

    def add_pair(self, a: Any, b: Any, value: Any, *, mirror: bool = True) -> None:
        """Add ``value`` at (a, b), and at (b, a) too unless ``mirror`` is False or a is b."""
        i, j = self.position(a), self.position(b)
        if i is not None and j is not None:
            self._hess.append((i, j, value))
            if mirror and a is not b:
                self._hess.append((j, i, value))

    def add_dense(self, grad: tf.Tensor, hess: tf.Tensor) -> None:
        """Add a whole gradient vector and Hessian matrix."""
        self._dense.append((grad, hess))

    def build(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Return the gradient ``[P]`` and Hessian ``[P, P]`` collected so far."""
        n = len(self.index)
        grad = tf.zeros([n], self.dtype)
        if self._grad:
            values = tf.stack([tf.cast(v, self.dtype) for _, v in self._grad])
            grad = tf.scatter_nd([[j] for j, _ in self._grad], values, [n])
        hess = tf.zeros([n, n], self.dtype)
        if self._hess:
            values = tf.stack([tf.cast(v, self.dtype) for _, _, v in self._hess])
            hess = tf.scatter_nd([[i, j] for i, j, _ in self._hess], values, [n, n])
        for g, h in self._dense:
            grad, hess = grad + g, hess + h
        return grad, hess


def _add_jet(out: _Dense, pdf: Any, first: dict, second: dict, factor: Any) -> None:
    """Add ``factor`` times a component's scalar jet (roles mapped to its Parameters)."""
    for role, d in first.items():
        out.add(pdf.params[role], factor * d)
    for (r, s), d2 in second.items():
        # one entry per unordered pair of roles: mirrored, and twice on the diagonal when two
        # roles are played by one Parameter (d2/dp2 gets both cross terms)
        a, b = pdf.params[r], pdf.params[s]
        out.add_pair(a, b, factor * d2, mirror=r != s)
        if r != s and a is b:
            out.add_pair(a, b, factor * d2, mirror=False)


def _global_and_constraints(nll: Any, sum_w: tf.Tensor, single: bool, out: _Dense) -> None:
    """Add the derivatives of the loss's global term and constraints, in closed form."""
    model, dtype = nll.model, out.dtype
    sum_w = tf.cast(sum_w, dtype)
    if nll.extended:
        # nu + sum_w (log N - log nu); for a Sum with yields N = nu: only nu's slopes remain
        for y in model._weights:
            out.add(y, tf.ones([], dtype))
    elif single:
        _, first, second = model._log_normalization_jet()
        _add_jet(out, model, first, second, sum_w)
    elif model.is_extended:  # sum_w log(nu), nu the sum of the yields
        nu = tf.cast(model.expected_events(), dtype)
        for y in model._weights:
            out.add(y, sum_w / nu)
            for y2 in model._weights:
                out.add_pair(y, y2, -sum_w / (nu * nu), mirror=False)
    # a sum by fractions is normalised to 1: no global term
    for c in nll.constraints:  # errordef ((p - observed) / sigma)**2
        p = tf.cast(c.param, dtype)
        scale = 2.0 * nll.errordef / (c.sigma * c.sigma)
        out.add(c.param, scale * (p - c.observed))
        out.add_pair(c.param, c.param, tf.constant(scale, dtype), mirror=False)


def _coefficients(model: Any, multipliers: tf.Tensor, out: _Dense) -> tf.Tensor:
    """Return ``dc_k / dparams`` of a Sum as ``[K, P]``; add ``sum_k lambda_k c_k``'s derivatives to ``out``.

    ``c_k = w_k / N_k = w_k exp(-L_k)`` with ``w_k`` linear in the yields or fractions and
    ``L_k = log N_k`` from the component's jet::

        dc = exp(-L) (dw - w dL)
        d2c = exp(-L) (w (dL dL^T - d2L) - dw dL^T - dL dw^T)
    """
    dtype = out.dtype
    rows = []
    for k, (weight, slopes, pdf) in enumerate(
        zip(model._weight_tensors(), model._weight_slopes(), model.pdfs, strict=True)
    ):
        log_norm, first, second = pdf._log_normalization_jet()
        inverse = tf.exp(-tf.cast(log_norm, dtype))
        weight = tf.cast(weight, dtype)
        d_w, d_l, d2_l = _Dense(out.index, dtype), _Dense(out.index, dtype), _Dense(out.index, dtype)
        for param, slope in slopes:
            d_w.add(param, tf.constant(slope, dtype))
        _add_jet(d_l, pdf, first, {}, tf.ones([], dtype))
        _add_jet(d2_l, pdf, {}, second, tf.ones([], dtype))
        (dw, _), (dl, _), (_, d2l) = d_w.build(), d_l.build(), d2_l.build()
        dc = inverse * (dw - weight * dl)
        outer_ll = dl[:, None] * dl[None, :]
        outer_wl = dw[:, None] * dl[None, :]
        d2c = inverse * (weight * (outer_ll - d2l) - outer_wl - tf.transpose(outer_wl))
        rows.append(dc)
        out.add_dense(multipliers[k] * dc, multipliers[k] * d2c)
    return tf.stack(rows)


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
