-- Databases of the team stack (tasks/team/postgres.py creates the same ones for `grm team up`).
CREATE DATABASE mlflow;
CREATE DATABASE mlflow_auth;
CREATE DATABASE prefect;
\connect prefect
CREATE EXTENSION IF NOT EXISTS pg_trgm;
