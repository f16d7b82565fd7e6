"""The abstention models, written by ``python -m bench.calibrate --write``: do not edit by hand.

Cross-validated on the XQuAD development half (grouped by article):
- same: 612 answerable, 562 with the paragraph removed;
  ROC AUC 0.93 (word cover alone 0.907);
  (answered, abstained) at thresholds:
  0.3: 0.933, 0.721; 0.5: 0.866, 0.859; 0.6: 0.804, 0.891;
  0.7: 0.727, 0.916; 0.8: 0.629, 0.961; 0.9: 0.485, 0.988.
- cross: 612 answerable, 555 with the paragraph removed;
  ROC AUC 0.89 (word cover alone 0.866);
  (answered, abstained) at thresholds:
  0.3: 0.941, 0.587; 0.5: 0.835, 0.791; 0.6: 0.734, 0.861;
  0.7: 0.626, 0.91; 0.8: 0.493, 0.96; 0.9: 0.319, 0.986.
- cross-untranslated: 612 answerable, 561 with the paragraph removed;
  ROC AUC 0.772 (word cover alone 0.692);
  (answered, abstained) at thresholds:
  0.3: 0.94, 0.285; 0.5: 0.753, 0.606; 0.6: 0.56, 0.809;
  0.7: 0.389, 0.945; 0.8: 0.185, 0.989; 0.9: 0.029, 1.0.
"""

from rag.abstention import Logistic

MODELS = {
    "same": Logistic(
        -6.6487,
        (
            1.6578,  # cover_best
            1.495,  # pool_cover
            1.1933,  # cover_max
            0.3596,  # missing_max
            -1.1317,  # missing_sum
            -0.2348,  # partial
            3.2369,  # score_best
            0.2247,  # words
            -1.4283,  # names_missing
            -0.0458,  # dropped
            3.7441,  # grams_best
            -0.5186,  # cue_best
        ),
    ),
    "cross": Logistic(
        -7.497,
        (
            2.9123,  # cover_best
            2.5069,  # pool_cover
            1.9319,  # cover_max
            -0.2419,  # missing_max
            -2.1786,  # missing_sum
            -0.3446,  # partial
            2.7513,  # score_best
            0.2499,  # words
            -1.3914,  # names_missing
            -1.1138,  # dropped
            1.8225,  # grams_best
            -0.3876,  # cue_best
        ),
    ),
    "cross-untranslated": Logistic(
        -1.4111,
        (
            0.273,  # cover_best
            0.0721,  # pool_cover
            -0.2923,  # cover_max
            0.6257,  # missing_max
            -1.6314,  # missing_sum
            0.2136,  # partial
            1.6139,  # score_best
            0.1707,  # words
            -1.6314,  # names_missing
            -3.219,  # dropped
            1.7993,  # grams_best
            -0.1831,  # cue_best
        ),
    ),
}
