"""Former home of the claims pass, kept as its import path: see bkdsl/verify/claims.py."""

from bkdsl.verify.claims import check_claims, establish_claims

__all__ = ["check_claims", "establish_claims"]
