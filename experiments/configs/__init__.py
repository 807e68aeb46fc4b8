"""One module per experiment: ``get_config(preset) -> ConfigDict`` and ``run(config, workdir) ->
experiments.report.Report``."""
