"""People's side of the review: the local voting server (:mod:`~evalkit.present.review.server`)
and the report's static Review page (:mod:`~evalkit.present.review.page`). The votes and
their scores are :mod:`evalkit.decide.review`."""
