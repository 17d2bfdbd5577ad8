"""The reference workflow declared in Python: the same steps, configs and cache keys as the YAML.

``train_and_promote`` registers a new version of ``iris_classifier`` on every run and promotes it
if its accuracy reaches the threshold; ``do_predictions`` predicts with the ``production``
version's ``trained_model``, resolved when the pipeline is compiled; ``do_predictions_from_context``
lets the step fetch the model itself through its step context. Each traces to exactly the config
of the packaged YAML pipeline of the same name (``mlops pipeline export
iris_pipelines:do_predictions`` prints it), so the two share their cache.
"""

from mlops import Model, ModelStages, get_pipeline_context, pipeline
from mlops.examples.iris.promotion import promote
from mlops.examples.iris.steps import (
    evaluate,
    load_data,
    load_inference_data,
    predict,
    predict_with_context,
    split,
    train,
)


@pipeline(model=Model(name="iris_classifier"))  # version None: each run registers a new one
def train_and_promote() -> None:
    X_train, X_test, y_train, y_test = split(data=load_data(), test_size=0.3, random_state=42)
    model = train(X_train=X_train, y_train=y_train, C=1.0, max_iter=500)
    accuracy = evaluate(model=model, X_test=X_test, y_test=y_test)
    promote(accuracy=accuracy, threshold=0.9)


@pipeline(model=Model(name="iris_classifier", version=ModelStages.PRODUCTION))
def do_predictions() -> None:
    model_version = get_pipeline_context().model_version
    inference_data = load_inference_data(n_samples=30, seed=0)
    predict(model=model_version.get_model_artifact("trained_model"), data=inference_data)


@pipeline(model=Model(name="iris_classifier", version=ModelStages.PRODUCTION))
def do_predictions_from_context() -> None:
    # the step reads the model through get_step_context(); named `predict`, as in the YAML
    predict_with_context.with_options(name="predict")(
        data=load_inference_data(n_samples=30, seed=0)
    )
