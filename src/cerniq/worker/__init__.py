"""Queue runtime: the registry of named queues and tasks, enqueueing, the runner and the scheduler.

Built on the ``bullmq`` Python port (BullMQ's Redis layout, which the runbook reads). Every Queue
and Worker is created through :mod:`cerniq.worker.queues`, which applies the settings that port
needs (see STACK.md).
"""
