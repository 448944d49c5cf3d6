-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d),
-- as POSTGRES_USER, who then owns the three source-system databases.
CREATE DATABASE crm;
CREATE DATABASE erp;
CREATE DATABASE scm;
