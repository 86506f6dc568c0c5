select
    tailnum,
    year as plane_year,
    type as plane_type,
    manufacturer as plane_manufacturer,
    engines as plane_engines,
    seats as plane_seats
from {{ source('raw', 'planes') }}
