# libFuzzer targets, one executable fuzz_<parser> per tests/fuzz/fuzz_<parser>.c:
#
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DGW_FUZZ=ON
#   cmake --build build-fuzz --target fuzz
#
# scripts/fuzz.sh does that and runs each target for a bounded time. The
# gwcore objects are built with coverage instrumentation
# (-fsanitize=fuzzer-no-link) and ASan+UBSan here, so the parsers under test
# are what the fuzzer steers and checks; everything else in the tree builds
# as usual and links the sanitizer runtimes. Each target also gets a ctest,
# fuzz_<parser>_corpus (label fuzz), that runs it once over its seed corpus:
# a quick regression check of every input saved there, crashes found
# earlier included.

if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "GW_FUZZ=ON needs clang for libFuzzer: -DCMAKE_C_COMPILER=clang "
                      "(Debian: apt-get install clang libclang-rt-14-dev)")
endif()

set(GW_FUZZ_SANITIZERS -fsanitize=address,undefined -fno-sanitize-recover=undefined
                       -fno-omit-frame-pointer)
target_compile_options(gwcore PRIVATE -fsanitize=fuzzer-no-link ${GW_FUZZ_SANITIZERS})
target_link_options(gwcore INTERFACE -fsanitize=address,undefined)

set(GW_FUZZ_TARGETS publish command legacy token path amqp chunked netaddr sse)
foreach(name IN LISTS GW_FUZZ_TARGETS)
  add_executable(fuzz_${name} ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_${name}.c)
  target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer ${GW_FUZZ_SANITIZERS})
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_${name} PRIVATE gwcore)
  add_test(NAME fuzz_${name}_corpus
           COMMAND fuzz_${name} -runs=0 ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${name})
  set_tests_properties(fuzz_${name}_corpus PROPERTIES LABELS fuzz TIMEOUT 300)
endforeach()
list(TRANSFORM GW_FUZZ_TARGETS PREPEND fuzz_ OUTPUT_VARIABLE GW_FUZZ_EXECUTABLES)
add_custom_target(fuzz DEPENDS ${GW_FUZZ_EXECUTABLES})
