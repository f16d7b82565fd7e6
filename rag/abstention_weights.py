"""The abstention models, written by ``python -m bench.calibrate --write``: do not edit by hand.

Cross-validated on the XQuAD development half (grouped by article):
- same: 612 answerable, 562 with the paragraph removed;
  ROC AUC 0.93 (word cover alone 0.907);
  (answered, abstained) at thresholds:
  0.3: 0.931, 0.719; 0.5: 0.866, 0.858; 0.6: 0.806, 0.89;
  0.7: 0.727, 0.916; 0.8: 0.629, 0.961; 0.9: 0.485, 0.988.
- cross: 612 answerable, 555 with the paragraph removed;
  ROC AUC 0.89 (word cover alone 0.866);
  (answered, abstained) at thresholds:
  0.3: 0.941, 0.587; 0.5: 0.837, 0.791; 0.6: 0.734, 0.861;
  0.7: 0.626, 0.91; 0.8: 0.493, 0.96; 0.9: 0.319, 0.986.
- cross-untranslated: 612 answerable, 561 with the paragraph removed;
  ROC AUC 0.771 (word cover alone 0.693);
  (answered, abstained) at thresholds:
  0.3: 0.941, 0.278; 0.5: 0.75, 0.613; 0.6: 0.559, 0.811;
  0.7: 0.382, 0.945; 0.8: 0.185, 0.989; 0.9: 0.029, 1.0.
"""

from rag.abstention import Logistic

MODELS = {
    "same": Logistic(
        -6.616,
        (
            1.6422,  # cover_best
            1.4952,  # pool_cover
            1.181,  # cover_max
            0.3313,  # missing_max
            -1.1477,  # missing_sum
            -0.2342,  # partial
            3.2,  # score_best
            0.2247,  # words
            -1.4426,  # names_missing
            -0.0453,  # dropped
            3.7671,  # grams_best
            -0.5138,  # cue_best
        ),
    ),
    "cross": Logistic(
        -7.5235,
        (
            2.9016,  # cover_best
            2.5284,  # pool_cover
            1.9429,  # cover_max
            -0.2303,  # missing_max
            -2.1773,  # missing_sum
            -0.3317,  # partial
            2.7472,  # score_best
            0.2508,  # words
            -1.3834,  # names_missing
            -1.1205,  # dropped
            1.8277,  # grams_best
            -0.3843,  # cue_best
        ),
    ),
    "cross-untranslated": Logistic(
        -1.3629,
        (
            0.5408,  # cover_best
            -0.0148,  # pool_cover
            -0.4224,  # cover_max
            0.544,  # missing_max
            -1.6152,  # missing_sum
            0.2352,  # partial
            1.6933,  # score_best
            0.1702,  # words
            -1.6152,  # names_missing
            -3.1871,  # dropped
            1.5975,  # grams_best
            -0.1704,  # cue_best
        ),
    ),
}
