"""Reference numbers that kaskad-train's correctness tests store.

1. scikit-learn LogisticRegression(C=1) on a small fixed data set: the
   coefficients, intercept and the first probabilities
   (crates/kaskad-train/src/logistic.rs, `matches_scikit_learn`).
2. shap.TreeExplainer (path-dependent) SHAP values of a fixed hand-made tree
   (crates/kaskad-train/src/tree.rs, `shap_values_match_the_shap_library`).

    python3 bench/peers/reference_values.py   # scikit-learn 1.7, shap 0.51
"""
import numpy as np
import shap
from sklearn.linear_model import LogisticRegression

# 1. The data the Rust test builds the same way.
rows = 60
x = np.array([[(i % 7) - 3.0, ((i * 3) % 11) / 2.0, ((i * 5) % 13) - 6.0] for i in range(rows)])
y = np.array([1 if ((i * 7) % 10) < (3 + (i % 7) // 2) else 0 for i in range(rows)])
lr = LogisticRegression(C=1.0, tol=1e-12, max_iter=100000).fit(x, y)
print("lr coefficients", repr(lr.coef_[0].tolist()))
print("lr intercept", repr(float(lr.intercept_[0])))
print("lr proba[0..4]", repr(lr.predict_proba(x[:4])[:, 1].tolist()))

# 2. The tree of the Rust test, as shap's dictionary model (x <= t goes left).
tree = {
    "children_left": np.array([1, 3, 5, -1, 7, -1, -1, -1, -1]),
    "children_right": np.array([2, 4, 6, -1, 8, -1, -1, -1, -1]),
    "children_default": np.array([1, 3, 5, -1, 7, -1, -1, -1, -1]),
    "features": np.array([0, 1, 0, -2, 2, -2, -2, -2, -2]),
    "thresholds": np.array([0.5, 1.5, 2.5, 0, 0.0, 0, 0, 0, 0]),
    "values": np.array([[0.3], [0.2], [0.45], [0.1], [0.25], [0.6], [0.2], [0.7], [0.1]]),
    "node_sample_weight": np.array([100, 60, 40, 20, 40, 25, 15, 10, 30], dtype=float),
}
explainer = shap.TreeExplainer({"trees": [tree]}, feature_perturbation="tree_path_dependent")
points = np.array([[0, 1, 0.5], [1, 2, -1], [3, 0, 1], [2, 5, -2]], dtype=float)
print("tree shap", repr(explainer.shap_values(points).tolist()))
print("tree expected", repr(float(np.ravel(explainer.expected_value)[0])))
