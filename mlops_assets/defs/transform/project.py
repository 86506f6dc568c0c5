"""The dbt project as Dagster sees it; `dagster-dbt project prepare-and-package --file` points here."""

from dagster_dbt import DbtProject

from mlops_assets.settings import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
