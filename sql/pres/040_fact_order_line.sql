-- pres.fact_order_line
-- Grain: one row per live order line (order line and header not soft-deleted, and not
-- store tombstones: hard-deleted at the source).
-- Key: (order_no, order_line_no) (degenerate dimensions).
-- Dimension keys: order_date_key (dim_date), product_key (the dim_product version valid on
-- the order date: the last version whose valid_from day is on or before order_date),
-- supplier_company_key and seller_company_key (dim_company), customer_key (dim_customer);
-- -1 (unknown member) when a lookup finds nothing.
-- Measures: quantity, unit_price, line_total. Natural keys and measures take the store
-- columns' own types; order_date compares as a date (a datetime order_date finds its day).
-- Maintained incrementally: orders whose lines or header changed since the previous build,
-- orders with a line of a product that changed, and orders still pointing at an unknown
-- member are recomputed.

create table if not exists pres.fact_order_line as
select
    lines.order_no,
    lines.order_line_no,
    0 as order_date_key,
    0 as product_key,
    0 as supplier_company_key,
    0 as seller_company_key,
    0 as customer_key,
    lines.quantity,
    lines.unit_price,
    lines.line_total,
    now() as etl_updated_datetime
from store_mysql.order_lines as lines
with no data;

-- the key, named as PostgreSQL names a primary key, so a table made by an earlier version
-- keeps its own
create unique index if not exists fact_order_line_pkey on pres.fact_order_line (order_no, order_line_no);
alter table pres.fact_order_line alter column order_no set not null;
alter table pres.fact_order_line alter column order_line_no set not null;
alter table pres.fact_order_line alter column order_date_key set not null;
alter table pres.fact_order_line alter column product_key set not null;
alter table pres.fact_order_line alter column supplier_company_key set not null;
alter table pres.fact_order_line alter column seller_company_key set not null;
alter table pres.fact_order_line alter column customer_key set not null;
alter table pres.fact_order_line alter column etl_updated_datetime set not null;

-- fact rows pointing at an unknown member are looked at again every run (their member may
-- have arrived): this partial index holds only them, so finding them costs nothing when
-- there are none (PostgreSQL; Redshift has no indexes and skips the statement)
-- (the quality step's unknown-member count reads it too: its WHERE is this predicate)
create index if not exists fact_order_line_unknown_member_idx on pres.fact_order_line (order_no)
where order_date_key = -1 or product_key = -1 or supplier_company_key = -1 or seller_company_key = -1
    or customer_key = -1;

-- products changed since the watermark, materialised first: a run in which none changed
-- never scans the order lines for them
drop table if exists tmp_fact_products;
create temporary table tmp_fact_products as
select products.product_code, products.supplier_id
from store_mysql.products as products
inner join pres_build as watermark on products.etl_updated_datetime >= watermark.since
where watermark.since > '1900-01-01 00:00:00+00';

analyze tmp_fact_products;

drop table if exists tmp_fact_orders;
create temporary table tmp_fact_orders as
select lines.order_no
from store_mysql.order_lines as lines
inner join pres_build as watermark on lines.etl_updated_datetime >= watermark.since
union
select headers.order_no
from store_mysql.order_headers as headers
inner join pres_build as watermark on headers.etl_updated_datetime >= watermark.since
union
select lines.order_no
from store_mysql.order_lines as lines
inner join tmp_fact_products as products
    on products.product_code = lines.product_code and products.supplier_id = lines.supplier_id
union
select fact.order_no
from pres.fact_order_line as fact
where fact.product_key = -1 or fact.supplier_company_key = -1 or fact.seller_company_key = -1 or fact.customer_key = -1;

analyze tmp_fact_orders;

delete from pres.fact_order_line as fact
using tmp_fact_orders as changed
where fact.order_no = changed.order_no;

insert into pres.fact_order_line
select
    lines.order_no,
    lines.order_line_no,
    coalesce(dates.date_key, -1) as order_date_key,
    coalesce(versions.product_key, -1) as product_key,
    coalesce(suppliers.company_key, -1) as supplier_company_key,
    coalesce(sellers.company_key, -1) as seller_company_key,
    coalesce(customers.customer_key, -1) as customer_key,
    lines.quantity,
    lines.unit_price,
    lines.line_total,
    now() as etl_updated_datetime
from store_mysql.order_lines as lines
inner join tmp_fact_orders as changed on changed.order_no = lines.order_no
inner join store_mysql.order_headers as headers
    on
        headers.order_no = lines.order_no and (headers.is_deleted = '0' or headers.is_deleted is null)
        and headers.etl_deleted_datetime is null
left join pres.dim_date as dates on dates.full_date = lines.order_date::date
-- the product version valid on the order date: versions of a product follow each other
-- (valid_to of one = valid_from of the next), so exactly one matches, or none before the
-- first version; versions starting and ending on the same day never match a date
left join pres.dim_product as versions
    on
        versions.product_code = lines.product_code
        and versions.supplier_id = lines.supplier_id
        and versions.valid_from::date <= lines.order_date::date
        and lines.order_date::date < versions.valid_to::date
left join pres.dim_company as suppliers on suppliers.company_id = lines.supplier_id
left join pres.dim_company as sellers on sellers.company_id = headers.company_id
left join pres.dim_customer as customers on customers.customer_document_no = headers.customer_document_no
where (lines.is_deleted = '0' or lines.is_deleted is null) and lines.etl_deleted_datetime is null;

drop table tmp_fact_orders;
drop table tmp_fact_products;
