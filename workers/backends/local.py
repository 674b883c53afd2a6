"""Local GPU workers: a run trains on the worker that takes its job from the `gpu` queue."""

from workers.backends.base import DEFAULT_BACKEND, QUEUE_GPU, Backend, register

LOCAL = register(
    Backend(
        name=DEFAULT_BACKEND,
        label="Local GPU workers",
        help="the workers started by `make run` / `workbench worker`",
        queue=QUEUE_GPU,
        job_function="workers.tasks.run_task",
        cancel_note="A running run stops at its next progress report (seconds).",
    )
)
