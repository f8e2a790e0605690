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
-- Maintained incrementally, in proportion to the changes: computed afresh and merged (only
-- new, changed and vanished rows written) are the lines that changed since the previous
-- build, every line of an order whose header changed whether it is live, its seller or its
-- customer, the lines still pointing at an unknown member, and the lines that a changed
-- product version now covers: a version added or closed since the previous build
-- (dim_product's etl_updated_datetime) covers the lines of its product dated from its
-- valid_from day (a current version) or its valid_to day (a closed one) on; lines dated
-- before keep their version. Company and customer keys are type 1 (a change keeps the key),
-- so their changes recompute nothing here. Without a watermark the table is emptied and
-- filled in one insert, its indexes built after it.

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

-- room on each page for a changed row's new version (PostgreSQL's HOT update: a row whose
-- indexed columns did not change is rewritten in its own page, no index entry added)
alter table pres.fact_order_line set (fillfactor = 90);
alter table pres.fact_order_line alter column order_no set not null;
alter table pres.fact_order_line alter column order_line_no set not null;
alter table pres.fact_order_line alter column order_date_key set not null;
alter table pres.fact_order_line alter column product_key set not null;
alter table pres.fact_order_line alter column supplier_company_key set not null;
alter table pres.fact_order_line alter column seller_company_key set not null;
alter table pres.fact_order_line alter column customer_key set not null;
alter table pres.fact_order_line alter column etl_updated_datetime set not null;

-- the table's rows computed from store and the dimensions (a view of this transaction only:
-- dropped at the end of the file, so store's columns stay free to change type between runs)
drop view if exists pres.tmp_fact_order_line_rows;
create view pres.tmp_fact_order_line_rows as
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

-- a full build (no watermark): the table emptied and filled in one insert
delete from pres.fact_order_line
where (select since from pres_build) = '1900-01-01 00:00:00+00';

insert into pres.fact_order_line
select rows.*
from pres.tmp_fact_order_line_rows as rows
where (select since from pres_build) = '1900-01-01 00:00:00+00';

-- otherwise a merge of the lines named in this file's header: their rows computed afresh,
-- then only the rows that differ written

-- product versions added or closed since the watermark, per product: the first day whose
-- lines may now belong to another version
drop table if exists tmp_fact_products;
create temporary table tmp_fact_products as
select
    versions.product_code,
    versions.supplier_id,
    min(case when versions.is_current then versions.valid_from else versions.valid_to end)::date as first_day
from pres.dim_product as versions
inner join pres_build as watermark on versions.etl_updated_datetime >= watermark.since
where watermark.since > '1900-01-01 00:00:00+00' and versions.product_key <> -1
group by versions.product_code, versions.supplier_id;

analyze tmp_fact_products;

-- headers changed since the watermark, with the keys this table gives them: an order is
-- recomputed when its header changed whether it is live, its seller or its customer (a header
-- whose total alone changed changes no fact row)
drop table if exists tmp_fact_headers;
create temporary table tmp_fact_headers as
select
    headers.order_no,
    coalesce(sellers.company_key, -1) as seller_company_key,
    coalesce(customers.customer_key, -1) as customer_key,
    case
        when (headers.is_deleted = '0' or headers.is_deleted is null) and headers.etl_deleted_datetime is null then 1
        else 0
    end as is_live
from store_mysql.order_headers as headers
inner join pres_build as watermark on headers.etl_updated_datetime >= watermark.since
left join pres.dim_company as sellers on sellers.company_id = headers.company_id
left join pres.dim_customer as customers on customers.customer_document_no = headers.customer_document_no
where watermark.since > '1900-01-01 00:00:00+00';

analyze tmp_fact_headers;

drop table if exists tmp_fact_orders;
create temporary table tmp_fact_orders as
select headers.order_no
from tmp_fact_headers as headers
where
    headers.is_live = 1
    and not exists (select 1 from pres.fact_order_line as fact where fact.order_no = headers.order_no)
union
select headers.order_no
from tmp_fact_headers as headers
inner join pres.fact_order_line as fact on fact.order_no = headers.order_no
where
    headers.is_live = 0
    or fact.seller_company_key <> headers.seller_company_key
    or fact.customer_key <> headers.customer_key;

-- the lines to recompute: changed in store, of a recomputed order, covered by a changed
-- product version, or pointing at an unknown member
drop table if exists tmp_fact_lines;
create temporary table tmp_fact_lines as
select lines.order_no, lines.order_line_no
from store_mysql.order_lines as lines
inner join pres_build as watermark on lines.etl_updated_datetime >= watermark.since
where watermark.since > '1900-01-01 00:00:00+00'
union
select lines.order_no, lines.order_line_no
from tmp_fact_orders as changed
inner join store_mysql.order_lines as lines on lines.order_no = changed.order_no
union
select fact.order_no, fact.order_line_no
from tmp_fact_products as products
inner join pres.dim_product as versions
    on versions.product_code = products.product_code and versions.supplier_id = products.supplier_id
inner join pres.fact_order_line as fact on fact.product_key = versions.product_key
inner join pres.dim_date as dates on dates.date_key = fact.order_date_key
where dates.full_date >= products.first_day
union
select fact.order_no, fact.order_line_no
from pres.fact_order_line as fact
where
    (select since from pres_build) > '1900-01-01 00:00:00+00'
    and (
        fact.order_date_key = -1 or fact.product_key = -1 or fact.supplier_company_key = -1
        or fact.seller_company_key = -1 or fact.customer_key = -1
    );

analyze tmp_fact_lines;

drop table if exists tmp_fact_rows;
create temporary table tmp_fact_rows as
select rows.*
from pres.tmp_fact_order_line_rows as rows
where exists (
    select 1 from tmp_fact_lines as changed
    where changed.order_no = rows.order_no and changed.order_line_no = rows.order_line_no
);

analyze tmp_fact_rows (order_no, order_line_no);

-- recomputed lines now gone (deleted, soft-deleted, or their header is)
delete from pres.fact_order_line as fact
using tmp_fact_lines as changed
where
    fact.order_no = changed.order_no
    and fact.order_line_no = changed.order_line_no
    and not exists (
        select 1 from tmp_fact_rows as fresh
        where fresh.order_no = fact.order_no and fresh.order_line_no = fact.order_line_no
    );

update pres.fact_order_line as fact
set
    order_date_key = fresh.order_date_key,
    product_key = fresh.product_key,
    supplier_company_key = fresh.supplier_company_key,
    seller_company_key = fresh.seller_company_key,
    customer_key = fresh.customer_key,
    quantity = fresh.quantity,
    unit_price = fresh.unit_price,
    line_total = fresh.line_total,
    etl_updated_datetime = fresh.etl_updated_datetime
from tmp_fact_rows as fresh
where
    fact.order_no = fresh.order_no
    and fact.order_line_no = fresh.order_line_no
    and (
        fact.order_date_key is distinct from fresh.order_date_key
        or fact.product_key is distinct from fresh.product_key
        or fact.supplier_company_key is distinct from fresh.supplier_company_key
        or fact.seller_company_key is distinct from fresh.seller_company_key
        or fact.customer_key is distinct from fresh.customer_key
        or fact.quantity is distinct from fresh.quantity
        or fact.unit_price is distinct from fresh.unit_price
        or fact.line_total is distinct from fresh.line_total
    );

insert into pres.fact_order_line
select fresh.*
from tmp_fact_rows as fresh
where not exists (
    select 1 from pres.fact_order_line as fact
    where fact.order_no = fresh.order_no and fact.order_line_no = fresh.order_line_no
);

-- the key and the lookups above; on a full build they are built once, after the insert
-- (the key named as PostgreSQL names a primary key, so a table made by an earlier version
-- keeps its own)
create unique index if not exists fact_order_line_pkey on pres.fact_order_line (order_no, order_line_no);
create index if not exists fact_order_line_product_idx on pres.fact_order_line (product_key);
-- fact rows pointing at an unknown member are looked at again every run (their member may
-- have arrived): this partial index holds only them, so finding them costs nothing when
-- there are none (PostgreSQL; Redshift has no indexes and skips the statement)
-- (the quality step's unknown-member count reads it too: its WHERE is this predicate)
create index if not exists fact_order_line_unknown_member_idx on pres.fact_order_line (order_no)
where order_date_key = -1 or product_key = -1 or supplier_company_key = -1 or seller_company_key = -1
    or customer_key = -1;

drop view pres.tmp_fact_order_line_rows;
drop table tmp_fact_headers;
drop table tmp_fact_orders;
drop table tmp_fact_lines;
drop table tmp_fact_rows;
drop table tmp_fact_products;
