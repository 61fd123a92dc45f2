"""Sums of PDFs: by fractions, or extended by yields (combination by composition, not inheritance)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from zgrad.models._base import BasePDF
from zgrad.models.analytic import _eager_inputs

__all__ = ["Sum"]

# a last fraction this far below zero is rounding of fractions that sum to one
_ROUNDING = 8 * np.finfo(np.float64).eps


class Sum(BasePDF):
    """A weighted sum of PDFs on one observable, normalised over its range.

    Give exactly one of ``fracs`` or ``yields``:

    - ``fracs``: ``k - 1`` fraction Parameters for ``k`` PDFs; the last PDF gets
      ``1 - sum(fracs)``. The model is not extended.
    - ``yields``: ``k`` yield Parameters; the density is ``sum(yield_i * pdf_i) / sum(yields)``,
      the model is extended (``is_extended`` is True) and :meth:`expected_events`
      returns ``sum(yields)``.

    Parameters
    ----------
    pdfs : sequence of BasePDF
        The components, all on the same observable (name and limits).
    fracs : sequence of Parameter, optional
    yields : sequence of Parameter, optional
    name : str, optional

    Raises
    ------
    TypeError
        If a component is not a zgrad model or a fraction or yield is not a Parameter.
    ValueError
        If both or neither of ``fracs`` and ``yields`` are given, their number does not
        match the components, the components' observables differ, or two different
        Parameters in the sum share one name.

    Notes
    -----
    Parameters are keyed by their names here (``Sum.params``, ``log_pdf_derivatives``), as
    the components' roles can repeat (two Gaussians both have a ``'mu'``). ``get_params``
    lists the components' Parameters in component order, then the fractions or yields.

    Examples
    --------
    >>> import zgrad
    >>> obs = zgrad.Space("x", limits=(0.0, 10.0))
    >>> P = zgrad.Parameter
    >>> gauss = zgrad.models.Gauss(obs, P("mu", 5.0), P("sigma", 1.0))
    >>> expo = zgrad.models.Exponential(obs, P("lam", -0.2))
    >>> model = zgrad.models.Sum([gauss, expo], yields=[P("n_sig", 300.0), P("n_bkg", 700.0)])
    >>> model.is_extended, float(model.expected_events())
    (True, 1000.0)
    >>> [p.name for p in model.get_params()]
    ['mu', 'sigma', 'lam', 'n_sig', 'n_bkg']
    >>> round(float(model.integrate((0.0, 10.0))), 12)
    1.0
    """

    def __init__(
        self,
        pdfs: Sequence[BasePDF],
        fracs: Sequence[Any] | None = None,
        yields: Sequence[Any] | None = None,
        name: str | None = None,
    ) -> None:
        pdfs = _checked_components(pdfs)
        if (fracs is None) == (yields is None):
            given = "both" if fracs is not None else "neither"
            raise ValueError(
                f"Sum needs exactly one of fracs= ({len(pdfs) - 1} fractions for {len(pdfs)} pdfs) or "
                f"yields= ({len(pdfs)} yields); got {given}."
            )
        extended = yields is not None
        kind, weights = ("yields", yields) if extended else ("fracs", fracs)
        if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
            raise TypeError(f"Sum: {kind} must be a sequence of Parameters; got {weights!r}.")
        weights = list(weights)
        expected = len(pdfs) if extended else len(pdfs) - 1
        if len(weights) != expected:
            raise ValueError(f"Sum of {len(pdfs)} pdfs needs {expected} {kind}; got {len(weights)}.")
        for i, weight in enumerate(weights):
            if not isinstance(weight, tf.Variable):
                raise TypeError(
                    f"Sum: {kind}[{i}] must be a zgrad.Parameter; got {weight!r} ({type(weight).__name__})."
                )
        candidates = [p for pdf in pdfs for p in pdf.get_params(floating=None)] + weights
        super().__init__(pdfs[0].obs, _by_name(candidates), name=name)
        self._pdfs = tuple(pdfs)
        self._weights = tuple(weights)
        self._extended = extended

    # --- description --------------------------------------------------------------------------

    @property
    def pdfs(self) -> tuple[BasePDF, ...]:
        """The components, in order."""
        return self._pdfs

    @property
    def uses_py_function(self) -> bool:
        """Whether any component passes its values through ``z.py_function``."""
        return any(pdf.uses_py_function for pdf in self._pdfs)

    @property
    def is_extended(self) -> bool:
        """Whether the sum was built with yields."""
        return self._extended

    def expected_events(self) -> tf.Tensor:
        """Return the total yield, ``sum(yields)``, as a tensor (extended sums only).

        Raises
        ------
        ValueError
            If the sum was built with fractions: it carries no yield.

        Examples
        --------
        >>> import zgrad
        >>> obs = zgrad.Space("x", limits=(0.0, 1.0))
        >>> flat = zgrad.models.Polynomial(obs, [])
        >>> float(zgrad.models.Sum([flat], yields=[zgrad.Parameter("n", 42.0)]).expected_events())
        42.0
        """
        if not self._extended:
            raise ValueError(
                f"{self.name} was built with fracs= and carries no yield; build it with yields=."
            )
        return tf.add_n([tf.convert_to_tensor(y) for y in self._weights])

    # --- hooks --------------------------------------------------------------------------------

    def _weight_tensors(self) -> list[Any]:
        if self._extended:
            return list(self._weights)
        if not self._weights:
            return [tf.constant(1.0, self._dtype())]
        return [*self._weights, 1.0 - tf.add_n([tf.convert_to_tensor(f) for f in self._weights])]

    def _mixture(self) -> list[tuple[tf.Tensor, BasePDF]]:
        """Return the shape as ``sum_k c_k * unnormalized_pdf_k(x)``: ``[(c_k, pdf_k)]``.

        The scalar weight and normalisation fold into one coefficient per component; losses
        with closed-form Hessians use the coefficients too (``zgrad.losses._jet_derivatives``).
        """
        weights = self._weight_tensors()
        return [(w / pdf._normalization(), pdf) for w, pdf in zip(weights, self._pdfs, strict=True)]

    def _weight_slopes(self) -> list[list[tuple[Any, float]]]:
        """Return, per component, ``[(Parameter, d weight / d Parameter)]``: the weights are linear.

        A yield or a fraction has slope 1 on its own weight; the last component of a sum by
        fractions has weight ``1 - sum(fracs)``, slope -1 on each fraction.
        """
        own = [[(w, 1.0)] for w in self._weights]
        if self._extended:
            return own
        return [*own, [(f, -1.0) for f in self._weights]]

    def _unnormalized_pdf(self, x: tf.Tensor) -> tf.Tensor:
        return tf.add_n([c * pdf._unnormalized_pdf(x) for c, pdf in self._mixture()])

    def _integral(self, lower: Any, upper: Any) -> tf.Tensor:
        terms = [
            w * (pdf._integral(lower, upper) / pdf._normalization())
            for w, pdf in zip(self._weight_tensors(), self._pdfs, strict=True)
        ]
        return tf.add_n(terms)

    def _normalization(self) -> tf.Tensor:
        if self._extended:
            return self.expected_events()
        # the fractions sum to one by construction: no rounding, and no spurious dependence on them
        return tf.constant(1.0, self._dtype())

    # --- sampling -----------------------------------------------------------------------------

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        # the number of events per component from a multinomial, each component drawn by its own
        # sampler, then one shuffle so that the events are not ordered by component
        weights = self._weight_values()
        if min(weights) < 0.0:
            # a negative weight: the components cannot be drawn apart; the whole density is
            # drawn by accept-reject (correct wherever the sum itself is a density)
            return super()._draw(n, rng)
        counts = rng.multinomial(n, weights / weights.sum())
        x = np.concatenate([pdf._draw(int(k), rng) for k, pdf in zip(counts, self._pdfs, strict=True)])
        rng.shuffle(x)
        return x

    def _weight_values(self) -> np.ndarray:
        """Return the weights, read once: the yields, or the fractions and 1 minus their sum."""
        values = [float(w.value()) for w in self._weights]
        if not self._extended:
            last = 1.0 - sum(values)
            # fractions that sum to one leave a last weight of a few ulp below zero: that is zero
            values.append(0.0 if -_ROUNDING < last < 0.0 else last)
        weights = np.array(values)
        if not (np.all(np.isfinite(weights)) and weights.sum() > 0.0):
            kind = "yields" if self._extended else "fractions (the last is 1 - the others)"
            raise ValueError(
                f"{self.name}: cannot sample with {kind} {values}: they must be finite with a positive sum."
            )
        return weights

    # --- closed-form derivatives --------------------------------------------------------------

    def log_pdf_derivatives(self, x: Any) -> dict[str, np.ndarray | None]:
        """Return ``d log pdf(x) / d param`` keyed by parameter name, from the components' closed forms.

        An entry is None where a component the parameter enters has no closed form for it
        (no ``log_pdf_derivatives`` method, or None for that role).

        Examples
        --------
        >>> import zgrad
        >>> obs = zgrad.Space("x", limits=(0.0, 1.0))
        >>> a = zgrad.models.Polynomial(obs, [])
        >>> b = zgrad.models.Polynomial(obs, [zgrad.Parameter("c1", 0.0)])
        >>> model = zgrad.models.Sum([a, b], fracs=[zgrad.Parameter("f", 0.5)])
        >>> float(model.log_pdf_derivatives([0.25])["f"][0])  # both densities are 1 here
        0.0
        """
        x, values = _eager_inputs(self, x)
        weights = [values[w.name] for w in self._weights]
        if not self._extended:
            weights.append(1.0 - sum(weights))
        densities = [np.asarray(pdf.pdf(x), dtype=float) for pdf in self._pdfs]
        mixture = sum(w * d for w, d in zip(weights, densities, strict=True))
        out: dict[str, np.ndarray | None] = {name: np.zeros_like(x) for name in values}
        for w, density, pdf in zip(weights, densities, self._pdfs, strict=True):
            closed = pdf.log_pdf_derivatives(x) if hasattr(pdf, "log_pdf_derivatives") else {}
            for role, param in pdf.params.items():
                part = closed.get(role)
                if part is None or out[param.name] is None:
                    out[param.name] = None
                else:
                    out[param.name] = out[param.name] + w * density * part / mixture
        total = sum(weights)
        for i, weight in enumerate(self._weights):
            if out[weight.name] is None:
                continue
            if self._extended:
                out[weight.name] = out[weight.name] + densities[i] / mixture - 1.0 / total
            else:
                out[weight.name] = out[weight.name] + (densities[i] - densities[-1]) / mixture
        return out


def _checked_components(pdfs: Any) -> list[BasePDF]:
    if isinstance(pdfs, BasePDF) or not isinstance(pdfs, Sequence) or not pdfs:
        raise TypeError(f"Sum: pdfs must be a non-empty sequence of zgrad models; got {pdfs!r}.")
    for i, pdf in enumerate(pdfs):
        if not isinstance(pdf, BasePDF):
            raise TypeError(f"Sum: pdfs[{i}] must be a zgrad model; got {pdf!r} ({type(pdf).__name__}).")
        if pdf.obs != pdfs[0].obs:
            raise ValueError(
                f"Sum: all pdfs must share one observable; pdfs[0] is on {pdfs[0].obs!r} but pdfs[{i}] is "
                f"on {pdf.obs!r}."
            )
    return list(pdfs)


def _by_name(params: list[Any]) -> dict[str, Any]:
    """Distinct Parameters keyed by name, first appearance first; two different ones with one name raise."""
    out: dict[str, Any] = {}
    for param in params:
        seen = out.get(param.name)
        if seen is None:
            out[param.name] = param
        elif seen is not param:
            raise ValueError(
                f"Sum: two different Parameters are named {param.name!r}; give them distinct names."
            )
    return out
