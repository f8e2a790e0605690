-- pres.dim_product (SCD type 2 on product_name and default_price)
-- Grain: one row per version of a source product (product_code + supplier_id).
-- Key: product_key (surrogate). A change of product_name or default_price closes the
-- current version (valid_to = the change's updated_datetime, is_current = false) and adds
-- a new current version valid from that moment; is_deleted is overwritten in place
-- (type 1). The first version of a product is valid from 1900-01-01, so orders older
-- than the product's first load find it. valid_to of a current version: 9999-12-31.
-- Unknown member: product_key -1.
-- Columns take the store columns' own types (valid_from/valid_to: timestamp, UTC); only
-- the surrogate key and the validity columns are NOT NULL: a NULL product name stays NULL
-- (and a change from or to NULL is a change). A product whose updated_datetime is NULL
-- (null_watermark_policy: include) changes at the build's time.
-- New versions get the next surrogate keys in product_code, supplier_id order.
-- Only live store rows feed it: a store tombstone (a row hard-deleted at the source) leaves
-- its member as last seen (facts of earlier orders still point at it).

create table if not exists pres.dim_product as
select
    0 as product_key,
    products.product_code,
    products.supplier_id,
    products.product_name,
    products.default_price,
    products.is_deleted,
    null::timestamp as valid_from,
    null::timestamp as valid_to,
    true as is_current,
    now() as etl_updated_datetime
from store_mysql.products as products
with no data;

-- the surrogate key, named as PostgreSQL names a primary key, so a table made by an
-- earlier version keeps its own
create unique index if not exists dim_product_pkey on pres.dim_product (product_key);
alter table pres.dim_product alter column product_key set not null;
alter table pres.dim_product alter column valid_from set not null;
alter table pres.dim_product alter column valid_to set not null;
alter table pres.dim_product alter column is_current set not null;
alter table pres.dim_product alter column etl_updated_datetime set not null;

create unique index if not exists dim_product_current_uk
    on pres.dim_product (product_code, supplier_id) where is_current;

create index if not exists dim_product_natural_idx on pres.dim_product (product_code, supplier_id, valid_from);

insert into pres.dim_product (product_key, product_name, valid_from, valid_to, is_current, etl_updated_datetime)
select -1, 'Unknown', '1900-01-01'::timestamp, '9999-12-31'::timestamp, false, now()
where not exists (select 1 from pres.dim_product where product_key = -1);

drop table if exists tmp_product_changes;
create temporary table tmp_product_changes as
select product_code, supplier_id, product_name, default_price, is_deleted, updated_datetime
from store_mysql.products
where etl_updated_datetime >= (select since from pres_build) and etl_deleted_datetime is null;

-- close the current version of products whose tracked attributes changed
update pres.dim_product as dim
set valid_to = coalesce(changes.updated_datetime, now()), is_current = false, etl_updated_datetime = now()
from tmp_product_changes as changes
where
    dim.product_code = changes.product_code
    and dim.supplier_id = changes.supplier_id
    and dim.is_current
    and (
        dim.product_name is distinct from changes.product_name
        or dim.default_price is distinct from changes.default_price
    );

-- a new current version for changed and for new products
insert into pres.dim_product (
    product_key, product_code, supplier_id, product_name, default_price, is_deleted, valid_from, valid_to, is_current,
    etl_updated_datetime
)
select
    (select greatest(max(dim.product_key), 0) from pres.dim_product as dim)
    + row_number() over (order by changes.product_code, changes.supplier_id) as product_key,
    changes.product_code,
    changes.supplier_id,
    changes.product_name,
    changes.default_price,
    changes.is_deleted,
    case
        when exists (
            select 1 from pres.dim_product as older
            where older.product_code = changes.product_code and older.supplier_id = changes.supplier_id
        ) then coalesce(changes.updated_datetime, now())
        else '1900-01-01'::timestamp
    end,
    '9999-12-31'::timestamp,
    true,
    now()
from tmp_product_changes as changes
where not exists (
    select 1 from pres.dim_product as dim
    where dim.product_code = changes.product_code and dim.supplier_id = changes.supplier_id and dim.is_current
);

-- type 1 attribute
update pres.dim_product as dim
set is_deleted = changes.is_deleted, etl_updated_datetime = now()
from tmp_product_changes as changes
where
    dim.product_code = changes.product_code
    and dim.supplier_id = changes.supplier_id
    and dim.is_current
    and dim.is_deleted is distinct from changes.is_deleted;

drop table tmp_product_changes;
