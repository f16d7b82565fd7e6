"""The abstention models, written by ``python -m bench.calibrate --write``: do not edit by hand.

Cross-validated on the XQuAD development half (grouped by article):
- same: 612 answerable, 563 with the paragraph removed;
  ROC AUC 0.93 (word cover alone 0.905);
  (answered, abstained) at thresholds:
  0.3: 0.933, 0.718; 0.5: 0.866, 0.863; 0.6: 0.809, 0.888;
  0.7: 0.722, 0.913; 0.8: 0.634, 0.961; 0.9: 0.487, 0.988.
- cross: 612 answerable, 557 with the paragraph removed;
  ROC AUC 0.765 (word cover alone 0.693);
  (answered, abstained) at thresholds:
  0.3: 0.941, 0.282; 0.5: 0.763, 0.585; 0.6: 0.574, 0.785;
  0.7: 0.371, 0.95; 0.8: 0.162, 0.993; 0.9: 0.021, 1.0.
"""

from rag.abstention import Logistic

MODELS = {
    "same": Logistic(
        -6.5366,
        (
            1.6007,  # cover_best
            1.3712,  # pool_cover
            1.2742,  # cover_max
            0.2045,  # missing_max
            -1.0558,  # missing_sum
            -0.2992,  # partial
            3.2579,  # score_best
            0.225,  # words
            -1.5627,  # names_missing
            -0.0157,  # dropped
            3.7278,  # grams_best
            -0.5724,  # cue_best
        ),
    ),
    "cross": Logistic(
        -0.3494,
        (
            -0.0394,  # cover_best
            -0.8364,  # pool_cover
            -0.0782,  # cover_max
            0.6878,  # missing_max
            -1.8881,  # missing_sum
            -0.1712,  # partial
            1.6901,  # score_best
            0.1434,  # words
            -1.8881,  # names_missing
            -2.9351,  # dropped
            1.6107,  # grams_best
            -0.179,  # cue_best
        ),
    ),
}
