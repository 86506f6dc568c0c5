select
    faa,
    name as airport_name,
    lat,
    lon,
    alt,
    tzone
from {{ source('raw', 'airports') }}
