"""The abstention models, written by ``python -m bench.calibrate --write``: do not edit by hand.

Cross-validated on the XQuAD development half (grouped by article):
- same: 612 answerable, 562 with the paragraph removed;
  ROC AUC 0.93 (word cover alone 0.907);
  (answered, abstained) at thresholds:
  0.3: 0.933, 0.722; 0.5: 0.863, 0.859; 0.6: 0.807, 0.886;
  0.7: 0.725, 0.916; 0.8: 0.629, 0.959; 0.9: 0.484, 0.988.
- cross: 612 answerable, 555 with the paragraph removed;
  ROC AUC 0.884 (word cover alone 0.858);
  (answered, abstained) at thresholds:
  0.3: 0.936, 0.58; 0.5: 0.827, 0.786; 0.6: 0.734, 0.852;
  0.7: 0.623, 0.912; 0.8: 0.472, 0.96; 0.9: 0.302, 0.989.
- cross-untranslated: 612 answerable, 561 with the paragraph removed;
  ROC AUC 0.773 (word cover alone 0.693);
  (answered, abstained) at thresholds:
  0.3: 0.938, 0.285; 0.5: 0.752, 0.615; 0.6: 0.567, 0.809;
  0.7: 0.386, 0.947; 0.8: 0.186, 0.989; 0.9: 0.033, 1.0.
"""

from rag.abstention import Logistic

MODELS = {
    "same": Logistic(
        -6.5842,
        (
            1.6699,  # cover_best
            1.4622,  # pool_cover
            1.2632,  # cover_max
            0.3398,  # missing_max
            -1.1625,  # missing_sum
            -0.2146,  # partial
            3.1824,  # score_best
            0.2252,  # words
            -1.4372,  # names_missing
            -0.0086,  # dropped
            3.6937,  # grams_best
            -0.5658,  # cue_best
        ),
    ),
    "cross": Logistic(
        -7.4681,
        (
            2.6597,  # cover_best
            2.499,  # pool_cover
            2.0317,  # cover_max
            -0.2211,  # missing_max
            -2.0976,  # missing_sum
            -0.1596,  # partial
            2.7533,  # score_best
            0.2622,  # words
            -1.3936,  # names_missing
            -1.0862,  # dropped
            1.6999,  # grams_best
            -0.418,  # cue_best
        ),
    ),
    "cross-untranslated": Logistic(
        -1.4297,
        (
            0.146,  # cover_best
            0.0846,  # pool_cover
            -0.2631,  # cover_max
            0.6085,  # missing_max
            -1.6525,  # missing_sum
            0.2085,  # partial
            1.7198,  # score_best
            0.1679,  # words
            -1.6525,  # names_missing
            -3.1887,  # dropped
            1.8034,  # grams_best
            -0.2492,  # cue_best
        ),
    ),
}
