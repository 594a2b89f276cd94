"""What the code location can evidence: every asset and check id, for the compliance matrix."""

import dagster as dg


class EvidenceCatalog(dg.ConfigurableResource):
    """Every ``asset:<key>`` and ``check:<asset>:<check>`` id the code location defines.

    Filled in by ``build_defs`` from the assets and checks it registers, so the compliance matrix expands
    patterns such as ``check:raw_data:*`` against the whole code location however the audit run was
    launched (an in-process run sees only its job's graph), and an evidence id naming nothing defined is
    reported missing instead of being skipped.
    """

    ids: list[str]
