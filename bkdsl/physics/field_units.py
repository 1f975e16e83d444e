"""The units of the nuclear data sets' fields (pint-parsable), torch-free: ``bkdsl check`` reads them to
check a spec's losses and metrics without loading a solver.

:data:`UNITS` — the extended Thomas–Fermi generator's fields (:mod:`bkdsl.physics.dataset`);
:data:`HF_UNITS` — the Kohn–Sham HF+BCS generator's (:mod:`bkdsl.physics.hf_dataset`; thesis eqs.
3.13–3.16: E_kin, E_int, E_pair, E_ex)."""

UNITS = {
    "rho": "fm^-3", "rho_n": "fm^-3", "rho_p": "fm^-3", "v": "MeV",
    "E": "MeV", "E_ext": "MeV", "E_com": "MeV", "E_gs": "MeV",
    "Q20": "b", "Q30": "b^1.5", "Q40": "b^2", "v0": "MeV fm^1.5",
    "residual": "MeV", "iterations": "dimensionless",
}

HF_UNITS = {"rho": "fm^-3", "rho_n": "fm^-3", "rho_p": "fm^-3", "v": "MeV", "E": "MeV", "E_kin": "MeV",
            "E_int": "MeV", "E_pair": "MeV", "E_ex": "MeV", "E_com": "MeV", "Q20": "b", "residual": "fm^-3",
            "iterations": "dimensionless"}
