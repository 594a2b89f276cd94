"""Package data of the compliance matrix: ``requirements.yaml``, the requirements it evaluates
(read by ``mlcomops_assets.lib.compliance.load_requirements``)."""
