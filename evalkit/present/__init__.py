"""Present: what people and other tools read.

* :mod:`~evalkit.present.report`: the HTML report (overview, one page per domain).
* :mod:`~evalkit.present.review`: the local review server and the report's Review page.
* :mod:`~evalkit.present.export`: results to TensorBoard and MLflow.
* :mod:`~evalkit.present.deploy`: ``select --export``, the chosen weights in the service's
  layout.

Imports every stage below it except :mod:`evalkit.execute`.
"""
