# Turns schema/NNN_*.sql into a C array of strings (gw_schema_sql), so the
# binary carries its migrations and needs no schema directory at run time.
# Invoked as: cmake -DSCHEMA_DIR=... -DOUT=... -P embed_schema.cmake
file(GLOB files "${SCHEMA_DIR}/[0-9][0-9][0-9]_*.sql")
list(SORT files)
set(body "/* generated from schema/ by cmake/embed_schema.cmake; do not edit */\n")
string(APPEND body "const char *const gw_schema_sql[] = {\n")
set(n 0)
foreach(f IN LISTS files)
  file(READ "${f}" sql)
  string(REPLACE "\\" "\\\\" sql "${sql}")
  string(REPLACE "\"" "\\\"" sql "${sql}")
  string(REPLACE "\n" "\\n\"\n\"" sql "${sql}")
  string(APPEND body "\"${sql}\",\n")
  math(EXPR n "${n} + 1")
endforeach()
string(APPEND body "};\nconst unsigned gw_schema_count = ${n};\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
