-- pres.report_weblog_access
-- Grain: one row per access-log request (store_weblog.access). Key: access_key.
-- Each request with the customer whose username it carries (none for anonymous "-"
-- requests or unknown usernames), the IP country, the device and the UTC time.
--
-- Maintained incrementally like report_order_lines: requests stored or changed since the
-- previous build (store etl_updated_datetime >= pres_build.since) and requests
-- of customers that changed since then are recomputed. No watermark row: full rebuild.

create table if not exists pres.report_weblog_access as
select
    access.access_key,
    access.ip_address,
    access.username,
    customers.customer_document_no,
    customers.customer_full_name,
    customers.date_of_birth as customer_date_of_birth,
    customers.country as customer_country,
    access.request_timestamp,
    access.request_timestamp_converted,
    access.request_timestamp_has_issue,
    access.country,
    access.device,
    access.device_type,
    access.status_code,
    access.etl_created_datetime,
    now() as etl_updated_datetime
from store_weblog.access as access
cross join store_mysql.customers as customers
with no data;

create unique index if not exists report_weblog_access_pkey on pres.report_weblog_access (access_key);
alter table pres.report_weblog_access alter column access_key set not null;
alter table pres.report_weblog_access alter column etl_updated_datetime set not null;

create index if not exists access_username_idx on store_weblog.access (username);

-- requests to (re)build: every one on a full build (no watermark), else those stored or
-- changed since the watermark and those of customers changed since then
drop table if exists tmp_changed_access;
create temporary table tmp_changed_access as
with
watermark as (
    select since from pres_build where since > '1900-01-01 00:00:00+00'
)

select access.access_key
from store_weblog.access as access
where (select since from pres_build) = '1900-01-01 00:00:00+00'
union
select access.access_key
from store_weblog.access as access
inner join watermark on access.etl_updated_datetime >= watermark.since
union
select access.access_key
from store_weblog.access as access
inner join store_mysql.customers as customers on customers.username = access.username
inner join watermark on customers.etl_updated_datetime >= watermark.since;

analyze tmp_changed_access;

delete from pres.report_weblog_access
where access_key in (select access_key from tmp_changed_access);

insert into pres.report_weblog_access
select
    access.access_key,
    access.ip_address,
    access.username,
    customers.customer_document_no,
    customers.customer_full_name,
    customers.date_of_birth as customer_date_of_birth,
    customers.country as customer_country,
    access.request_timestamp,
    access.request_timestamp_converted,
    access.request_timestamp_has_issue,
    access.country,
    access.device,
    access.device_type,
    access.status_code,
    access.etl_created_datetime,
    now() as etl_updated_datetime
from store_weblog.access as access
left join store_mysql.customers as customers
    on customers.username = access.username and access.username <> '-'
where access.access_key in (select access_key from tmp_changed_access);

drop table tmp_changed_access;
