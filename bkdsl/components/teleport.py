"""``teleport = dyson_teleport(over = "dense", strength = 0.3, mass = 0.5)``: gradient teleportation
(source 000 §3) over the copies of a repeated block — G = (z − H₀ − Σ)⁻¹ on the layer chain, see
:mod:`bkdsl.nn.teleport` for H₀, z and Σ. ``strength = 0`` is plain backpropagation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bkdsl.registry import Component, component


class DysonTeleportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    over: str = Field(min_length=1, description="the repeated block whose copies form the stack (repeat(over(...), n))")
    strength: float = Field(ge=0, allow_inf_nan=False, description="λ: weight of the teleported gradient (0: plain backprop)")
    mass: float = Field(0.5, gt=0, allow_inf_nan=False,
                        description="m: z = −2 − m², reach ξ = 1/arccosh(1 + m²/2) layers")
    adaptive: bool = Field(True, description="self-energy Σ from each layer's measured gradient attenuation (false: Σ = 0)")


@component("dyson_teleport", kind="gradient")
class DysonTeleport(Component):
    """δ_l = δ_l^chain + λ Σ_{k>l} (−G(l, k)) δ_k^chain with G from the Dyson equation on the layer chain."""

    Params = DysonTeleportParams
    # attached to the built model by bkdsl.train.teleport.attach_teleport (the runner, after the seed)
