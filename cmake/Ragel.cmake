# sib_ragel(<out-var> <input.rl>): generates C from a Ragel machine into the
# build directory (generated code is never committed) and returns its path.
find_program(RAGEL_EXECUTABLE ragel)
if(NOT RAGEL_EXECUTABLE)
  message(FATAL_ERROR "ragel not found; run tools/install-deps.sh")
endif()

function(sib_ragel out input)
  get_filename_component(name ${input} NAME_WE)
  set(gen ${CMAKE_CURRENT_BINARY_DIR}/${name}.c)
  add_custom_command(OUTPUT ${gen}
    COMMAND ${RAGEL_EXECUTABLE} -G2 -o ${gen} ${CMAKE_CURRENT_SOURCE_DIR}/${input}
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${input}
    COMMENT "Ragel ${input}")
  set(${out} ${gen} PARENT_SCOPE)
endfunction()
