"""How a 6.23 is routed in each regime, or why it is refused.

Theory of operation. A 6.23 command must be signed with the key whose
certificate the meter holds in its transitionalCoS DS cell (docs/ecos-domain.md
§C1, §H.2), recorded as the meter's
:class:`~openecos.store.enums.CosCredentialState`. The regime
(:mod:`openecos.migration.regime`) says which parties are live. One table,
:data:`ROUTES`, gives for each (regime, credential state) the CoS Party that
signs, or the refusal:

=============  ==========  ==================================================
regime         meter on    6.23
=============  ==========  ==================================================
pre-go-live    TCoS        TCoS Party signs
pre-go-live    ECoS        refused: ECoS not live (a pilot meter); exception
migration      TCoS        TCoS Party signs
migration      ECoS        ECoS Party signs
enduring       TCoS        refused: TCoS retired; meter raised for recovery
enduring       ECoS        ECoS Party signs
=============  ==========  ==================================================

A born-ECoS pilot meter before go-live (seed 003: ECoS certificates on a
limited number of hubs before go-live) can be served by the ECoS Party when
:attr:`RoutingConfig.ecos_pilot` is set. The DUIS codes for the refusals are
configuration: SEC Appendix AD, which defines E062301..E062306, is not
public, so the defaults are PROVISIONAL (E062306, the one 6.23-specific code
no other check uses, docs ``openecos.cos.checks.CHECK_RESPONSE_CODES``).
:func:`route_update` returns a :class:`RoutingDecision`; its
:meth:`~RoutingDecision.require` raises :class:`UpdateRefused` for a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from openecos.cos.routing import CosParties, CosParty
from openecos.duis.codes import ResponseCode
from openecos.migration.errors import UpdateRefused
from openecos.migration.regime import Regime
from openecos.store.enums import CosCredentialState


class RefusalReason(StrEnum):
    """Why the regime does not let a 6.23 through."""

    TCOS_RETIRED = "the meter is still on TCoS and TCoS is retired"
    ECOS_NOT_LIVE = "the meter is on ECoS and ECoS is not live"


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """Response codes of the refusals (PROVISIONAL, see module doc) and the pilot switch."""

    tcos_retired_response_code: ResponseCode = ResponseCode.E062306
    ecos_not_live_response_code: ResponseCode = ResponseCode.E062306
    ecos_pilot: bool = False
    """Before go-live, let the ECoS Party serve meters already on ECoS (pilot hubs)."""


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """Either ``signer`` (whose key signs the 0x0107) or a refusal with its DUIS code."""

    signer: CosCredentialState | None
    refusal: RefusalReason | None = None
    response_code: ResponseCode | None = None
    raise_exception: bool = False
    """True when the meter must also go to the exceptions queue for recovery."""

    def party(self, parties: CosParties) -> CosParty:
        """The signing party; raises :class:`UpdateRefused` for a refusal."""
        return parties.for_state(self.require())

    def require(self) -> CosCredentialState:
        """The signer's credential state; raises :class:`UpdateRefused` for a refusal."""
        if self.signer is not None:
            return self.signer
        assert self.refusal is not None and self.response_code is not None
        raise UpdateRefused(self.refusal.value, self.response_code, self.raise_exception)


_T, _EC = CosCredentialState.TCOS, CosCredentialState.ECOS

#: (regime, credential state) → the signer's state, or the refusal (see the module table).
ROUTES: MappingProxyType[tuple[Regime, CosCredentialState], CosCredentialState | RefusalReason] = (
    MappingProxyType(
        {
            (Regime.PRE_GO_LIVE, _T): _T,
            (Regime.PRE_GO_LIVE, _EC): RefusalReason.ECOS_NOT_LIVE,
            (Regime.MIGRATION, _T): _T,
            (Regime.MIGRATION, _EC): _EC,
            (Regime.ENDURING, _T): RefusalReason.TCOS_RETIRED,
            (Regime.ENDURING, _EC): _EC,
        }
    )
)


def route_update(
    regime: Regime, credential_state: CosCredentialState, config: RoutingConfig | None = None
) -> RoutingDecision:
    """How a 6.23 for a meter in ``credential_state`` is handled in ``regime``."""
    config = config or RoutingConfig()
    route = ROUTES[(regime, credential_state)]
    if isinstance(route, CosCredentialState):
        return RoutingDecision(route)
    if route is RefusalReason.ECOS_NOT_LIVE and config.ecos_pilot:
        return RoutingDecision(_EC)
    code = (
        config.tcos_retired_response_code
        if route is RefusalReason.TCOS_RETIRED
        else config.ecos_not_live_response_code
    )
    # Both refusals strand the meter: it needs recovery, not a resubmission.
    return RoutingDecision(None, route, code, raise_exception=True)
