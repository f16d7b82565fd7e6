"""The abstention models, written by ``python -m bench.calibrate --write``: do not edit by hand.

Cross-validated on the XQuAD development half (grouped by article):
- same: 612 answerable, 563 with the paragraph removed;
  ROC AUC 0.93 (word cover alone 0.905);
  (answered, abstained) at thresholds:
  0.3: 0.933, 0.719; 0.5: 0.866, 0.863; 0.6: 0.809, 0.888;
  0.7: 0.722, 0.915; 0.8: 0.634, 0.961; 0.9: 0.487, 0.988.
- cross: 612 answerable, 560 with the paragraph removed;
  ROC AUC 0.885 (word cover alone 0.86);
  (answered, abstained) at thresholds:
  0.3: 0.928, 0.573; 0.5: 0.815, 0.786; 0.6: 0.73, 0.854;
  0.7: 0.623, 0.912; 0.8: 0.49, 0.961; 0.9: 0.301, 0.993.
- cross-untranslated: 612 answerable, 559 with the paragraph removed;
  ROC AUC 0.77 (word cover alone 0.691);
  (answered, abstained) at thresholds:
  0.3: 0.941, 0.279; 0.5: 0.752, 0.606; 0.6: 0.56, 0.814;
  0.7: 0.379, 0.939; 0.8: 0.186, 0.989; 0.9: 0.036, 1.0.
"""

from rag.abstention import Logistic

MODELS = {
    "same": Logistic(
        -6.5874,
        (
            1.5771,  # cover_best
            1.4201,  # pool_cover
            1.2603,  # cover_max
            0.1999,  # missing_max
            -0.9992,  # missing_sum
            -0.2627,  # partial
            3.2501,  # score_best
            0.2253,  # words
            -1.5646,  # names_missing
            -0.0075,  # dropped
            3.7599,  # grams_best
            -0.567,  # cue_best
        ),
    ),
    "cross": Logistic(
        -7.4056,
        (
            2.6521,  # cover_best
            2.4312,  # pool_cover
            2.1691,  # cover_max
            -0.4331,  # missing_max
            -2.245,  # missing_sum
            -0.2489,  # partial
            2.6533,  # score_best
            0.2643,  # words
            -1.4528,  # names_missing
            -1.0721,  # dropped
            1.7076,  # grams_best
            -0.386,  # cue_best
        ),
    ),
    "cross-untranslated": Logistic(
        -1.431,
        (
            0.2159,  # cover_best
            0.0214,  # pool_cover
            -0.2138,  # cover_max
            0.718,  # missing_max
            -1.6268,  # missing_sum
            0.2482,  # partial
            1.7549,  # score_best
            0.1658,  # words
            -1.6268,  # names_missing
            -3.2158,  # dropped
            1.7263,  # grams_best
            -0.2326,  # cue_best
        ),
    ),
}
