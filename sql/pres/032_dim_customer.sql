-- pres.dim_customer (SCD type 1: changes overwrite in place)
-- Grain: one row per source customer. Key: customer_key (surrogate); natural key
-- customer_document_no; username is unique too (weblog requests join on it).
-- Unknown member: customer_key -1 (anonymous or unknown users, orphan orders).
-- Columns take the store columns' own types; only the surrogate key is NOT NULL: a NULL
-- name, username, city, country or date of birth stays NULL.
-- New customers get the next surrogate keys in customer_document_no order.
-- Only live store rows feed it: a store tombstone (a row hard-deleted at the source) leaves
-- its member as last seen (facts of earlier orders still point at it).

create table if not exists pres.dim_customer as
select
    0 as customer_key,
    customers.customer_document_no,
    customers.customer_full_name,
    customers.username,
    customers.date_of_birth,
    customers.city,
    customers.state,
    customers.country,
    customers.post_code,
    customers.is_deleted,
    now() as etl_updated_datetime
from store_mysql.customers as customers
with no data;

-- the keys, named as PostgreSQL names a primary key and a unique constraint, so a table
-- made by an earlier version keeps its own
create unique index if not exists dim_customer_pkey on pres.dim_customer (customer_key);
create unique index if not exists dim_customer_customer_document_no_key on pres.dim_customer (customer_document_no);
alter table pres.dim_customer alter column customer_key set not null;
alter table pres.dim_customer alter column etl_updated_datetime set not null;

create index if not exists dim_customer_username_idx on pres.dim_customer (username);

insert into pres.dim_customer (customer_key, customer_document_no, customer_full_name, etl_updated_datetime)
select -1, null, 'Unknown', now()
where not exists (select 1 from pres.dim_customer where customer_key = -1);

drop table if exists tmp_customer_changes;
create temporary table tmp_customer_changes as
select customer_document_no, customer_full_name, username, date_of_birth, city, state, country, post_code, is_deleted
from store_mysql.customers
where etl_updated_datetime >= (select since from pres_build) and etl_deleted_datetime is null;

update pres.dim_customer as dim
set
    customer_full_name = changes.customer_full_name,
    username = changes.username,
    date_of_birth = changes.date_of_birth,
    city = changes.city,
    state = changes.state,
    country = changes.country,
    post_code = changes.post_code,
    is_deleted = changes.is_deleted,
    etl_updated_datetime = now()
from tmp_customer_changes as changes
where
    dim.customer_document_no = changes.customer_document_no
    and (
        dim.customer_full_name is distinct from changes.customer_full_name
        or dim.username is distinct from changes.username
        or dim.date_of_birth is distinct from changes.date_of_birth
        or dim.city is distinct from changes.city
        or dim.state is distinct from changes.state
        or dim.country is distinct from changes.country
        or dim.post_code is distinct from changes.post_code
        or dim.is_deleted is distinct from changes.is_deleted
    );

insert into pres.dim_customer (
    customer_key, customer_document_no, customer_full_name, username, date_of_birth, city, state, country, post_code,
    is_deleted, etl_updated_datetime
)
select
    (select greatest(max(dim.customer_key), 0) from pres.dim_customer as dim)
    + row_number() over (order by changes.customer_document_no) as customer_key,
    changes.customer_document_no,
    changes.customer_full_name,
    changes.username,
    changes.date_of_birth,
    changes.city,
    changes.state,
    changes.country,
    changes.post_code,
    changes.is_deleted,
    now()
from tmp_customer_changes as changes
where not exists (select 1 from pres.dim_customer as dim where dim.customer_document_no = changes.customer_document_no);

drop table tmp_customer_changes;
