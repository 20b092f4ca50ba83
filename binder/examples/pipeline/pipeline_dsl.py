"""The same pipeline written with the Python DSL.

    python pipeline_dsl.py > dsl.pipeline.yaml   # the equivalent YAML
"""

from jupyter_mlops.pipelines import notebook, param, pipeline, script


@pipeline(name="train-and-evaluate", parameters={
    "C": param(float, 1.0, "inverse regularisation strength"),
    "test_size": param(float, 0.25),
    "threshold": param(float, 0.8, "minimum test accuracy"),
})
def train_and_evaluate(C, test_size, threshold):
    """Split iris, fit a logistic regression, check its test accuracy."""
    prepare = notebook("prepare.ipynb", parameters={"test_size": test_size, "seed": 0},
                       outputs=["train.csv", "test.csv"], cache=True, retries=1, timeout=600)
    train = notebook("train.ipynb", after=[prepare], parameters={"C": C},
                     outputs=["model.pkl"], resources={"cpu": 1, "memory": "1Gi"},
                     retries=1, timeout=600)
    script("evaluate.py", after=[prepare, train], parameters={"threshold": threshold},
           retries=1, timeout=600)


if __name__ == "__main__":
    print(train_and_evaluate.to_yaml(), end="")
