"""The abstention models, written by ``python -m bench.calibrate --write``: do not edit by hand.

Cross-validated on the XQuAD development half (grouped by article):
- same: 612 answerable, 562 with the paragraph removed;
  ROC AUC 0.93 (word cover alone 0.907);
  (answered, abstained) at thresholds:
  0.3: 0.933, 0.724; 0.5: 0.863, 0.859; 0.6: 0.807, 0.888;
  0.7: 0.73, 0.916; 0.8: 0.631, 0.959; 0.9: 0.484, 0.988.
- cross: 612 answerable, 555 with the paragraph removed;
  ROC AUC 0.885 (word cover alone 0.858);
  (answered, abstained) at thresholds:
  0.3: 0.938, 0.58; 0.5: 0.828, 0.789; 0.6: 0.73, 0.854;
  0.7: 0.623, 0.912; 0.8: 0.474, 0.96; 0.9: 0.302, 0.987.
- cross-untranslated: 612 answerable, 561 with the paragraph removed;
  ROC AUC 0.773 (word cover alone 0.692);
  (answered, abstained) at thresholds:
  0.3: 0.935, 0.285; 0.5: 0.75, 0.61; 0.6: 0.562, 0.816;
  0.7: 0.387, 0.948; 0.8: 0.185, 0.989; 0.9: 0.029, 1.0.
"""

from rag.abstention import Logistic

MODELS = {
    "same": Logistic(
        -6.6263,
        (
            1.6557,  # cover_best
            1.5056,  # pool_cover
            1.24,  # cover_max
            0.3492,  # missing_max
            -1.1433,  # missing_sum
            -0.2146,  # partial
            3.2146,  # score_best
            0.2258,  # words
            -1.4217,  # names_missing
            -0.0477,  # dropped
            3.7019,  # grams_best
            -0.5809,  # cue_best
        ),
    ),
    "cross": Logistic(
        -7.5761,
        (
            2.6386,  # cover_best
            2.4927,  # pool_cover
            2.145,  # cover_max
            -0.1604,  # missing_max
            -2.0432,  # missing_sum
            -0.2012,  # partial
            2.7812,  # score_best
            0.2655,  # words
            -1.3354,  # names_missing
            -1.0435,  # dropped
            1.8155,  # grams_best
            -0.4076,  # cue_best
        ),
    ),
    "cross-untranslated": Logistic(
        -1.4385,
        (
            0.2006,  # cover_best
            0.07,  # pool_cover
            -0.2463,  # cover_max
            0.6036,  # missing_max
            -1.6241,  # missing_sum
            0.2177,  # partial
            1.7068,  # score_best
            0.1702,  # words
            -1.6241,  # names_missing
            -3.2239,  # dropped
            1.7774,  # grams_best
            -0.2125,  # cue_best
        ),
    ),
}
