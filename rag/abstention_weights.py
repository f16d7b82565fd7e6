"""The abstention models, written by ``python -m bench.calibrate --write``: do not edit by hand.

Cross-validated on the XQuAD development half (grouped by article):
- same: 612 answerable, 562 with the paragraph removed;
  ROC AUC 0.929 (word cover alone 0.906);
  (answered, abstained) at thresholds:
  0.3: 0.93, 0.719; 0.5: 0.861, 0.854; 0.6: 0.81, 0.891;
  0.7: 0.727, 0.918; 0.8: 0.631, 0.961; 0.9: 0.487, 0.988.
- cross: 612 answerable, 555 with the paragraph removed;
  ROC AUC 0.889 (word cover alone 0.866);
  (answered, abstained) at thresholds:
  0.3: 0.936, 0.58; 0.5: 0.828, 0.795; 0.6: 0.73, 0.861;
  0.7: 0.621, 0.908; 0.8: 0.493, 0.96; 0.9: 0.322, 0.986.
- cross-untranslated: 612 answerable, 561 with the paragraph removed;
  ROC AUC 0.769 (word cover alone 0.692);
  (answered, abstained) at thresholds:
  0.3: 0.943, 0.276; 0.5: 0.75, 0.61; 0.6: 0.559, 0.802;
  0.7: 0.381, 0.948; 0.8: 0.185, 0.989; 0.9: 0.029, 1.0.
"""

from rag.abstention import Logistic

MODELS = {
    "same": Logistic(
        -6.6533,
        (
            1.3936,  # cover_best
            1.5413,  # pool_cover
            1.2663,  # cover_max
            0.3887,  # missing_max
            -1.1492,  # missing_sum
            -0.2846,  # partial
            3.5449,  # score_best
            0.2232,  # words
            -1.4759,  # names_missing
            -0.0469,  # dropped
            3.5118,  # grams_best
            -0.5299,  # cue_best
        ),
    ),
    "cross": Logistic(
        -7.3778,
        (
            3.0031,  # cover_best
            2.4941,  # pool_cover
            1.8562,  # cover_max
            -0.1611,  # missing_max
            -2.1605,  # missing_sum
            -0.3886,  # partial
            2.6788,  # score_best
            0.2467,  # words
            -1.4578,  # names_missing
            -1.1277,  # dropped
            1.6991,  # grams_best
            -0.3671,  # cue_best
        ),
    ),
    "cross-untranslated": Logistic(
        -1.3865,
        (
            0.4619,  # cover_best
            -0.0224,  # pool_cover
            -0.3878,  # cover_max
            0.688,  # missing_max
            -1.6394,  # missing_sum
            0.2262,  # partial
            1.8449,  # score_best
            0.1676,  # words
            -1.6394,  # names_missing
            -3.159,  # dropped
            1.5175,  # grams_best
            -0.1863,  # cue_best
        ),
    ),
}
