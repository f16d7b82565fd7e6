"""The abstention models, written by ``python -m bench.calibrate --write``: do not edit by hand.

Cross-validated on the XQuAD development half (grouped by article):
- same: 612 answerable, 562 with the paragraph removed;
  ROC AUC 0.93 (word cover alone 0.907);
  (answered, abstained) at thresholds:
  0.3: 0.931, 0.721; 0.5: 0.864, 0.858; 0.6: 0.807, 0.89;
  0.7: 0.725, 0.918; 0.8: 0.627, 0.961; 0.9: 0.485, 0.988.
- cross: 612 answerable, 555 with the paragraph removed;
  ROC AUC 0.889 (word cover alone 0.865);
  (answered, abstained) at thresholds:
  0.3: 0.938, 0.586; 0.5: 0.835, 0.793; 0.6: 0.734, 0.859;
  0.7: 0.621, 0.91; 0.8: 0.492, 0.962; 0.9: 0.319, 0.986.
- cross-untranslated: 612 answerable, 561 with the paragraph removed;
  ROC AUC 0.769 (word cover alone 0.692);
  (answered, abstained) at thresholds:
  0.3: 0.943, 0.278; 0.5: 0.75, 0.61; 0.6: 0.557, 0.807;
  0.7: 0.379, 0.947; 0.8: 0.185, 0.989; 0.9: 0.029, 1.0.
"""

from rag.abstention import Logistic

MODELS = {
    "same": Logistic(
        -6.6086,
        (
            1.6259,  # cover_best
            1.5122,  # pool_cover
            1.1584,  # cover_max
            0.3284,  # missing_max
            -1.1478,  # missing_sum
            -0.2502,  # partial
            3.2117,  # score_best
            0.2255,  # words
            -1.4368,  # names_missing
            -0.0459,  # dropped
            3.7614,  # grams_best
            -0.5238,  # cue_best
        ),
    ),
    "cross": Logistic(
        -7.4265,
        (
            2.8539,  # cover_best
            2.4893,  # pool_cover
            1.9549,  # cover_max
            -0.1854,  # missing_max
            -2.1772,  # missing_sum
            -0.3802,  # partial
            2.7126,  # score_best
            0.2486,  # words
            -1.4346,  # names_missing
            -1.1115,  # dropped
            1.8409,  # grams_best
            -0.3827,  # cue_best
        ),
    ),
    "cross-untranslated": Logistic(
        -1.3533,
        (
            0.5346,  # cover_best
            -0.029,  # pool_cover
            -0.4263,  # cover_max
            0.6251,  # missing_max
            -1.6153,  # missing_sum
            0.2247,  # partial
            1.6646,  # score_best
            0.1697,  # words
            -1.6153,  # names_missing
            -3.1844,  # dropped
            1.6443,  # grams_best
            -0.1674,  # cue_best
        ),
    ),
}
