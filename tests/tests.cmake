# Unit tests: one executable per tests/test_<module>.c, linked with the pure
# modules only. Integration tests: tests/integration/*.py run the real binary
# with /usr/bin/python3 (Debian's python3-websockets and python3-pika live
# there); tests/integration/browser_*.mjs drive headless Chromium with node.
# Labels: unit, integration, broker (needs RabbitMQ), browser (needs Chromium),
# image (builds and runs the container image with podman, as root), faults
# (power cuts, full and read-only disks, kill -9, network partitions; as root).

file(GLOB GW_UNIT_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/test_*.c)
foreach(src IN LISTS GW_UNIT_TESTS)
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE gwcore)
  target_compile_definitions(${name} PRIVATE GW_SCHEMA_DIR="${PROJECT_SOURCE_DIR}/schema")
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 120)
endforeach()

set(GW_TEST_ENV
  "STATUSGATE_BIN=$<TARGET_FILE:statusgate>"
  "GW_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
  "PYTHONDONTWRITEBYTECODE=1")

file(GLOB GW_PY_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/integration/*_test.py)
foreach(src IN LISTS GW_PY_TESTS)
  get_filename_component(name ${src} NAME_WE)
  # The image test builds the container image from the sources, whatever the
  # build tree: in the sanitizer build (scripts/test.sh's second pass) it would
  # only build and test the same image again.
  if(name MATCHES "^image_" AND GW_SANITIZE)
    continue()
  endif()
  add_test(NAME ${name} COMMAND /usr/bin/python3 ${src})
  if(name MATCHES "^broker_")
    set(labels "integration;broker")
  elseif(name MATCHES "^image_")
    set(labels "integration;image")
  else()
    set(labels "integration")
  endif()
  # fault tests (faults_*, broker_faults_*): they cut power, fill and break
  # disks, kill the gateway and cut the network (as root); -LE faults leaves
  # them out of a quick run
  if(name MATCHES "faults_")
    list(APPEND labels "faults")
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" TIMEOUT 900
    ENVIRONMENT "${GW_TEST_ENV}")
  if(name MATCHES "^image_")
    # on a fresh machine: podman, the base images, the toolchain download
    set_tests_properties(${name} PROPERTIES TIMEOUT 1200)
  endif()
endforeach()

file(GLOB GW_BROWSER_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/integration/browser_*.mjs)
foreach(src IN LISTS GW_BROWSER_TESTS)
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME ${name} COMMAND node ${src})
  set_tests_properties(${name} PROPERTIES LABELS "integration;browser" TIMEOUT 600
    ENVIRONMENT "${GW_TEST_ENV}")
endforeach()

# config.c belongs to the daemon (it needs the install paths), so its test
# compiles it in
target_sources(test_config PRIVATE ${PROJECT_SOURCE_DIR}/src/config.c)
target_compile_definitions(test_config PRIVATE
  GW_WEB_DIR_DEFAULT="/nonexistent" GW_SOURCE_WEB_DIR="${PROJECT_SOURCE_DIR}/web")
