-- pres.dim_company (SCD type 1: changes overwrite in place)
-- Grain: one row per source company (suppliers and sellers). Key: company_key (surrogate);
-- natural key company_id. Unknown member: company_key -1.
-- Columns take the store columns' own types (company_id may be a number or a string);
-- only the surrogate key is NOT NULL: a NULL name or country stays NULL.
-- New companies get the next surrogate keys in company_id order.
-- Maintained incrementally from store rows changed since the previous build.
-- Only live store rows feed it: a store tombstone (a row hard-deleted at the source) leaves
-- its member as last seen (facts of earlier orders still point at it).

create table if not exists pres.dim_company as
select
    0 as company_key,
    companies.company_id,
    companies.company_name,
    companies.country,
    companies.is_supplier,
    companies.is_deleted,
    now() as etl_updated_datetime
from store_mysql.companies as companies
with no data;

-- the keys, named as PostgreSQL names a primary key and a unique constraint, so a table
-- made by an earlier version keeps its own
create unique index if not exists dim_company_pkey on pres.dim_company (company_key);
create unique index if not exists dim_company_company_id_key on pres.dim_company (company_id);
alter table pres.dim_company alter column company_key set not null;
alter table pres.dim_company alter column etl_updated_datetime set not null;

insert into pres.dim_company (company_key, company_id, company_name, etl_updated_datetime)
select -1, null, 'Unknown', now()
where not exists (select 1 from pres.dim_company where company_key = -1);

drop table if exists tmp_company_changes;
create temporary table tmp_company_changes as
select company_id, company_name, country, is_supplier, is_deleted
from store_mysql.companies
where etl_updated_datetime >= (select since from pres_build) and etl_deleted_datetime is null;

update pres.dim_company as dim
set
    company_name = changes.company_name,
    country = changes.country,
    is_supplier = changes.is_supplier,
    is_deleted = changes.is_deleted,
    etl_updated_datetime = now()
from tmp_company_changes as changes
where
    dim.company_id = changes.company_id
    and (
        dim.company_name is distinct from changes.company_name
        or dim.country is distinct from changes.country
        or dim.is_supplier is distinct from changes.is_supplier
        or dim.is_deleted is distinct from changes.is_deleted
    );

insert into pres.dim_company (company_key, company_id, company_name, country, is_supplier, is_deleted, etl_updated_datetime)
select
    (select greatest(max(dim.company_key), 0) from pres.dim_company as dim)
    + row_number() over (order by changes.company_id) as company_key,
    changes.company_id,
    changes.company_name,
    changes.country,
    changes.is_supplier,
    changes.is_deleted,
    now()
from tmp_company_changes as changes
where not exists (select 1 from pres.dim_company as dim where dim.company_id = changes.company_id);

drop table tmp_company_changes;
