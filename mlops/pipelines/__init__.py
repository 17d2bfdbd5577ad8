"""Pipelines declared in Python: ``@pipeline`` functions that call steps, traced into a config.

A YAML pipeline and a Python pipeline that mean the same thing are the same config, compiled by
the same compiler into the same graph with the same cache keys::

    @pipeline(model=Model(name="iris_classifier", version=ModelStages.PRODUCTION))
    def do_predictions():
        model_version = get_pipeline_context().model_version
        predict(model=model_version.get_model_artifact("trained_model"), data=load_data())

traces to::

    pipeline: {name: do_predictions, enable_cache: true}
    model: {name: iris_classifier, version: production}
    steps:
      load_data: {_target_: my_pipelines.load_data}
      predict:
        _target_: my_pipelines.predict
        model: ${model:trained_model}
        data: ${step:load_data.inference_data}

The parts: :mod:`._tracing` (step calls, the pipeline context), :mod:`._handles` (what a call
returns, and the error for using it as data), :mod:`._model`
(``Model``), :mod:`._external` (``ExternalArtifact``), :mod:`._pipeline` (``@pipeline`` and
running), :mod:`._expand` (merging a traced pipeline into a composed config with the overrides).
"""

from ._expand import expand_pipeline, import_pipeline, split_overrides
from ._external import ExternalArtifact
from ._handles import ModelArtifactHandle, OutputHandle, PipelineDefinitionError
from ._model import Model, ModelVersion
from ._pipeline import Pipeline, pipeline
from ._tracing import PipelineContext, TracedPipeline, get_pipeline_context

__all__ = [
    "ExternalArtifact",
    "Model",
    "ModelArtifactHandle",
    "ModelVersion",
    "OutputHandle",
    "Pipeline",
    "PipelineContext",
    "PipelineDefinitionError",
    "TracedPipeline",
    "expand_pipeline",
    "get_pipeline_context",
    "import_pipeline",
    "pipeline",
    "split_overrides",
]
