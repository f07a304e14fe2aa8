# Finds the Debian-packaged libraries Sibyl builds against and exposes each as
# an imported target Sib::<name>. Install them with tools/install-deps.sh.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

function(sib_require_lib name header lib)
  find_path(${name}_INC ${header})
  find_library(${name}_LIB ${lib})
  if(NOT ${name}_INC OR NOT ${name}_LIB)
    message(FATAL_ERROR "${name} not found (${header}, lib${lib}); run tools/install-deps.sh")
  endif()
  add_library(Sib::${name} UNKNOWN IMPORTED)
  set_target_properties(Sib::${name} PROPERTIES IMPORTED_LOCATION ${${name}_LIB}
                        INTERFACE_INCLUDE_DIRECTORIES ${${name}_INC})
endfunction()

sib_require_lib(ev ev.h ev)
sib_require_lib(lz4 lz4.h lz4)
sib_require_lib(yaml yaml.h yaml)
sib_require_lib(cmocka cmocka.h cmocka)
# admin API (admin/) and the admin CLI (tools/sibyltool)
sib_require_lib(microhttpd microhttpd.h microhttpd)
sib_require_lib(jansson jansson.h jansson)
sib_require_lib(curl curl/curl.h curl)
# line editing and history for the shell (tools/shell): Debian libedit-dev
sib_require_lib(edit histedit.h edit)
