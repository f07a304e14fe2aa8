/* schema.h: CQL types, value codecs and the schema catalog (keyspaces,
 * tables, columns) of a Sibyl node.
 *
 * (Seed written by the lead: the type representation below is shared with
 * cql/ (wire metadata) and parser/-driven execution. Extend, don't change.) */
#ifndef SIB_SCHEMA_H
#define SIB_SCHEMA_H

#include "common.h"

/* Native protocol v4 type codes (spec section 6); the enum values ARE the
 * wire codes so cql/ writes them directly. */
typedef enum {
    SIB_T_CUSTOM = 0x0000,
    SIB_T_ASCII = 0x0001,
    SIB_T_BIGINT = 0x0002,
    SIB_T_BLOB = 0x0003,
    SIB_T_BOOLEAN = 0x0004,
    SIB_T_COUNTER = 0x0005,
    SIB_T_DECIMAL = 0x0006,
    SIB_T_DOUBLE = 0x0007,
    SIB_T_FLOAT = 0x0008,
    SIB_T_INT = 0x0009,
    SIB_T_TIMESTAMP = 0x000B,
    SIB_T_UUID = 0x000C,
    SIB_T_VARCHAR = 0x000D, /* text */
    SIB_T_VARINT = 0x000E,
    SIB_T_TIMEUUID = 0x000F,
    SIB_T_INET = 0x0010,
    SIB_T_DATE = 0x0011,
    SIB_T_TIME = 0x0012,
    SIB_T_SMALLINT = 0x0013,
    SIB_T_TINYINT = 0x0014,
    SIB_T_DURATION = 0x0015,
    SIB_T_LIST = 0x0020,
    SIB_T_MAP = 0x0021,
    SIB_T_SET = 0x0022,
    SIB_T_UDT = 0x0030,
    SIB_T_TUPLE = 0x0031,
} sib_type_code;

/* An immutable, interned type. Native types have no subtypes; list/set have
 * sub[0]; map has sub[0] (key) and sub[1] (value). Compare types by pointer
 * only after interning (sib_type_get). */
typedef struct sib_type {
    sib_type_code code;
    bool frozen;
    const struct sib_type *sub[2];
} sib_type;

#endif
