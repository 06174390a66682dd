"""What crosses runtimes: the definitions the Airflow tasks and the Spark job both import.

Standard library only, so the Spark image and the Airflow image can carry it unchanged.
"""
