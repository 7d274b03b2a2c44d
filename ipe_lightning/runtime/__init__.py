"""What every job needs around ``trainer.fit``/``trainer.test``, below ``tasks`` and the tools.

``ddp``          DDP ranks of a multirun job run that job, in its directory
``requeue``      submitit's requeue signal: finish the step, save ``last.ckpt``, then requeue
``checkpoints``  where ``last.ckpt`` is; the save on SIGTERM (preemption)
``progress``     the whole run's progress: bars with its ETA, plain lines without a terminal
``log``          the package logger (the job's console and its ``run.log``)
``examples``     LR | bicubic | SR | HR panels of the test images
``loggers``      loggers from config; W&B that never prompts and never leaks between jobs
``lock``         one writer per run directory: a second job on it is refused, naming the holder
``rank``         whether this process is global rank 0: the one answer every part asks
``job``          a train/test job's record (``metrics.json``), however the job ends
``nonfinite``    a NaN or infinite training loss stops training before it is saved (callback)
``per_image``    ``per_image.csv``: one row per test image, gathered from every rank (callback)

Submodules import only what they need, so importing one does not pull in the others.
"""
