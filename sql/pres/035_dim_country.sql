-- pres.dim_country
-- Grain: one row per ISO 3166 alpha-2 country code seen in customers, companies or IP
-- lookups. Key: country_key (surrogate); natural key country_code.
-- Unknown member: country_key -1 (no country: private or unknown IP addresses).
-- Codes compare as text whatever the source's column types (char(2), varchar, ...); a
-- NULL or empty country is no code. New codes get the next surrogate keys in code order.

create table if not exists pres.dim_country (
    country_key integer primary key,
    country_code text unique,
    country_label text
);

insert into pres.dim_country (country_key, country_code, country_label)
select -1, null, 'Unknown'
where not exists (select 1 from pres.dim_country where country_key = -1);

insert into pres.dim_country (country_key, country_code, country_label)
select
    (select greatest(max(dim.country_key), 0) from pres.dim_country as dim)
    + row_number() over (order by codes.country_code) as country_key,
    codes.country_code,
    codes.country_code
from (
    select customers.country::text as country_code
    from store_mysql.customers as customers
    inner join pres_build as watermark on customers.etl_updated_datetime >= watermark.since
    union
    select companies.country::text
    from store_mysql.companies as companies
    inner join pres_build as watermark on companies.etl_updated_datetime >= watermark.since
    union
    select access.country
    from store_weblog.access as access
    inner join pres_build as watermark on access.etl_updated_datetime >= watermark.since
) as codes
where
    codes.country_code is not null
    and codes.country_code <> ''
    and not exists (select 1 from pres.dim_country as dim where dim.country_code = codes.country_code);
