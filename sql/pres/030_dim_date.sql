-- pres.dim_date
-- Grain: one row per calendar day. Key: date_key = YYYYMMDD (integer); unknown member -1
-- (no date, e.g. an access-log line whose timestamp could not be read).
-- Covers, without gaps, every day from the first order or request date (UTC) or from
-- 1 January of last year, whichever is earlier, through the last such date or today,
-- whichever is later; each run adds the days of the rows stored or changed since the
-- previous build. Days are generated from a 5-digit counter (no generate_series, which
-- Redshift runs on the leader node only): at most 100,000 days (273 years) per build.

create table if not exists pres.dim_date (
    date_key integer primary key,
    full_date date unique,
    year smallint,
    quarter smallint,
    month smallint,
    month_name text,
    year_month char(7),
    day_of_month smallint,
    day_of_week smallint,
    day_name text,
    iso_week smallint,
    is_weekend boolean
);

insert into pres.dim_date (date_key, full_date, month_name, day_name)
select -1, null, 'Unknown', 'Unknown'
where not exists (select 1 from pres.dim_date where date_key = -1);

-- (joins with the watermark row, not correlated subqueries: the planner then uses the
-- store's etl_updated_datetime index)
drop table if exists tmp_date_bounds;
create temporary table tmp_date_bounds as
select
    least(
        (select min(lines.order_date)::date from pres_build as w
         inner join store_mysql.order_lines as lines on lines.etl_updated_datetime >= w.since),
        (select min(access.request_timestamp_converted)::date from pres_build as w
         inner join store_weblog.access as access on access.etl_updated_datetime >= w.since
         where not access.request_timestamp_has_issue),
        (date_trunc('year', current_date) - interval '1 year')::date
    ) as first_day,
    greatest(
        (select max(lines.order_date)::date from pres_build as w
         inner join store_mysql.order_lines as lines on lines.etl_updated_datetime >= w.since),
        (select max(access.request_timestamp_converted)::date from pres_build as w
         inner join store_weblog.access as access on access.etl_updated_datetime >= w.since
         where not access.request_timestamp_has_issue),
        current_date
    ) as last_day;

-- nothing to generate when the calendar already holds every day of the range (most runs)
delete from tmp_date_bounds
where
    (
        select count(*) from pres.dim_date as dim
        where dim.full_date >= tmp_date_bounds.first_day and dim.full_date <= tmp_date_bounds.last_day
    ) = tmp_date_bounds.last_day - tmp_date_bounds.first_day + 1;

analyze tmp_date_bounds;

drop table if exists tmp_digits;
create temporary table tmp_digits as
select 0 as n union all select 1 union all select 2 union all select 3 union all select 4
union all select 5 union all select 6 union all select 7 union all select 8 union all select 9;

insert into pres.dim_date
select
    to_char(days.full_date, 'YYYYMMDD')::integer as date_key,
    days.full_date,
    extract(year from days.full_date)::smallint as year,
    extract(quarter from days.full_date)::smallint as quarter,
    extract(month from days.full_date)::smallint as month,
    trim(to_char(days.full_date, 'Month')) as month_name,
    to_char(days.full_date, 'YYYY-MM') as year_month,
    extract(day from days.full_date)::smallint as day_of_month,
    (case when extract(dow from days.full_date) = 0 then 7 else extract(dow from days.full_date) end)::smallint
        as day_of_week,
    trim(to_char(days.full_date, 'Day')) as day_name,
    extract(week from days.full_date)::smallint as iso_week,
    extract(dow from days.full_date) in (0, 6) as is_weekend
from (
    select bounds.first_day + (d1.n + 10 * d2.n + 100 * d3.n + 1000 * d4.n + 10000 * d5.n) as full_date
    from tmp_date_bounds as bounds
    cross join tmp_digits as d1
    cross join tmp_digits as d2
    cross join tmp_digits as d3
    cross join tmp_digits as d4
    cross join tmp_digits as d5
    where d1.n + 10 * d2.n + 100 * d3.n + 1000 * d4.n + 10000 * d5.n <= bounds.last_day - bounds.first_day
) as days
where not exists (select 1 from pres.dim_date as dim where dim.full_date = days.full_date);

drop table tmp_digits;
drop table tmp_date_bounds;
