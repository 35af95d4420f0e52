"""Execute: plan a run by domain and carry it out; the one place the steps meet.

* :mod:`~evalkit.execute.domains`: which checkpoints and data belong to which domain.
* :mod:`~evalkit.execute.engine`: the driver (what each checkpoint x dataset still needs,
  units to the executor, results into the store).
* :mod:`~evalkit.execute.executors`, :mod:`~evalkit.execute.ray_executor`: the unit of work
  and where it runs (in process, or Ray).
* :mod:`~evalkit.execute.generate`: batched generation and the output cache.
* :mod:`~evalkit.execute.precision`, :mod:`~evalkit.execute.device`: bf16 and CPU/GPU.
* :mod:`~evalkit.execute.racing`: ``--race``, evaluate on growing subsets, drop the clear
  losers.
* :mod:`~evalkit.execute.watch`: which checkpoints of a run in progress are complete.

Imports every stage below it except :mod:`evalkit.present`.
"""
