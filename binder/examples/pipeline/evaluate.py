"""Evaluate the trained model on the held-out split; logs into this step's run."""

import argparse
import pickle

import pandas as pd

import jupyter_mlops as mlops

parser = argparse.ArgumentParser()
parser.add_argument("--threshold", type=float, default=0.8)
args = parser.parse_args()

test = pd.read_csv("test.csv")
with open("model.pkl", "rb") as f:
    model = pickle.load(f)
accuracy = model.score(test.drop(columns="target"), test.target)
print(f"test accuracy {accuracy:.3f}")
mlops.log_metric("test_accuracy", accuracy)
if accuracy < args.threshold:
    raise SystemExit(f"accuracy {accuracy:.3f} is below the threshold {args.threshold}")
