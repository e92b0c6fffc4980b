"""`make bench`: what hexa costs against raw Celery, measured side by side on real workers.

Every figure compares hexa with its raw-Celery twin in the same run, in short alternating
blocks, and prints an A/A ratio (raw against a second raw) beside it: on a shared machine
throughput drifts by tens of per cent between runs, CPU time per task far less.
"""
